//! deploy/ checked with real parsers (no Docker engine or Kubernetes cluster runs here):
//! the Dockerfile with `dockerfile-parser`, every Kubernetes manifest deserialised into the
//! `k8s-openapi` type of its kind and serialised back with nothing lost (an unknown or
//! misspelt field fails), compose and Prometheus files with `serde_yaml`, the Grafana dashboard
//! against the metric names a real cluster node exposes at /metrics.

mod common;
use common::*;
use k8s_openapi::api::{apps, autoscaling, batch, core, networking, policy};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn deploy(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy").join(p)
}
fn read(p: &str) -> String {
    std::fs::read_to_string(deploy(p)).unwrap_or_else(|e| panic!("{p}: {e}"))
}

#[test]
fn dockerfile_is_multi_stage_small_and_non_root() {
    use dockerfile_parser::{Dockerfile, Instruction};
    let d = Dockerfile::parse(&read("Dockerfile")).expect("Dockerfile parses");
    let froms: Vec<String> = d
        .instructions
        .iter()
        .filter_map(|i| match i {
            Instruction::From(f) => Some(f.image.content.clone()),
            _ => None,
        })
        .collect();
    assert!(froms.len() >= 2, "multi-stage: {froms:?}");
    assert!(froms.last().unwrap().contains("distroless"), "small final image: {froms:?}");
    let last_from = d.instructions.iter().rposition(|i| matches!(i, Instruction::From(_))).unwrap();
    let user = d.instructions[last_from..]
        .iter()
        .find_map(|i| match i {
            Instruction::Misc(m) if m.instruction.content.eq_ignore_ascii_case("USER") => {
                Some(m.arguments.components.iter().map(|c| format!("{c:?}")).collect::<String>())
            }
            _ => None,
        })
        .expect("the final stage sets USER");
    let who = user.split('"').nth(1).unwrap_or_default().trim().to_owned();
    let name = who.split(':').next().unwrap_or_default();
    assert!(!name.is_empty() && name != "root" && name != "0", "non-root USER: {who}");
    assert!(d.instructions[last_from..].iter().any(|i| matches!(i, Instruction::Entrypoint(_))));
    assert!(d.content.contains("--bin jiebanke"));
}

/// Deserialises into `T` and back; the round trip must equal the document (nothing unknown).
fn typed<T: serde::de::DeserializeOwned + serde::Serialize>(doc: &Value, file: &str) -> T {
    let t: T = serde_json::from_value(doc.clone()).unwrap_or_else(|e| panic!("{file}: not a valid {}: {e}", doc["kind"]));
    let back = serde_json::to_value(&t).unwrap();
    assert_eq!(&back, doc, "{file}: {} has fields the schema does not know (or wrong types)", doc["kind"]);
    t
}

#[test]
fn kubernetes_manifests_match_the_api_schemas() {
    let mut kinds = BTreeSet::new();
    let mut deployments = Vec::new();
    for entry in std::fs::read_dir(deploy("k8s")).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        for raw in serde_yaml::Deserializer::from_str(&text) {
            let doc: Value = serde::Deserialize::deserialize(raw).unwrap_or_else(|e| panic!("{file}: {e}"));
            let kind = doc["kind"].as_str().unwrap_or_else(|| panic!("{file}: no kind")).to_owned();
            match kind.as_str() {
                "Deployment" => deployments.push((file.clone(), typed::<apps::v1::Deployment>(&doc, &file))),
                "Service" => drop(typed::<core::v1::Service>(&doc, &file)),
                "ConfigMap" => drop(typed::<core::v1::ConfigMap>(&doc, &file)),
                "Secret" => drop(typed::<core::v1::Secret>(&doc, &file)),
                "PersistentVolumeClaim" => drop(typed::<core::v1::PersistentVolumeClaim>(&doc, &file)),
                "Ingress" => drop(typed::<networking::v1::Ingress>(&doc, &file)),
                "PodDisruptionBudget" => drop(typed::<policy::v1::PodDisruptionBudget>(&doc, &file)),
                "HorizontalPodAutoscaler" => drop(typed::<autoscaling::v2::HorizontalPodAutoscaler>(&doc, &file)),
                "CronJob" => drop(typed::<batch::v1::CronJob>(&doc, &file)),
                other => panic!("{file}: unexpected kind {other}"),
            }
            kinds.insert(kind);
        }
    }
    for k in ["Deployment", "Service", "Ingress", "ConfigMap", "Secret", "PodDisruptionBudget", "HorizontalPodAutoscaler", "CronJob"] {
        assert!(kinds.contains(k), "deploy/k8s has a {k}");
    }
    assert_eq!(deployments.len(), 2, "gateway and rest");
    for (file, d) in deployments {
        let spec = d.spec.template.spec.unwrap();
        let c = &spec.containers[0];
        let path = |p: &Option<core::v1::Probe>| p.as_ref().and_then(|p| p.http_get.as_ref()).and_then(|h| h.path.clone());
        assert_eq!(path(&c.readiness_probe).as_deref(), Some("/readyz"), "{file}");
        assert_eq!(path(&c.liveness_probe).as_deref(), Some("/healthz"), "{file}");
        assert!(c.lifecycle.as_ref().and_then(|l| l.pre_stop.as_ref()).is_some(), "{file}: preStop");
        assert_eq!(spec.security_context.and_then(|s| s.run_as_non_root), Some(true), "{file}");
        let role = &c.args.as_ref().unwrap()[0];
        assert!(role == "gateway" || role == "rest", "{file}: {role}");
    }
}

#[test]
fn compose_runs_a_full_cluster() {
    let mut doc: serde_yaml::Value = serde_yaml::from_str(&read("docker-compose.yml")).expect("compose parses");
    doc.apply_merge().unwrap();
    // Merge keys nest: apply once more for the environment maps.
    let services = doc["services"].as_mapping().unwrap().clone();
    for s in ["gateway1", "gateway2", "gateway3", "rest", "nginx", "mysql", "redis", "rabbitmq", "prometheus", "grafana"] {
        assert!(services.contains_key(s), "service {s}");
    }
    let mut ids = BTreeSet::new();
    for g in ["gateway1", "gateway2", "gateway3"] {
        let mut svc = services[g].clone();
        svc.apply_merge().unwrap();
        assert_eq!(svc["command"][0].as_str(), Some("gateway"), "{g}");
        let env = &svc["environment"];
        assert!(env["JBK_REDIS_URL"].as_str().unwrap().starts_with("redis://"), "{g}");
        assert!(env["JBK_DATABASE_URL"].as_str().unwrap().starts_with("mysql://"), "{g}");
        assert!(env["JBK_AMQP_URL"].as_str().unwrap().starts_with("amqp://"), "{g}");
        ids.insert(env["JBK_NODE_ID"].as_str().unwrap().to_owned());
    }
    assert_eq!(ids.len(), 3, "distinct node ids");
    // Files mounted from deploy/ exist.
    for s in services.values() {
        for v in s["volumes"].as_sequence().into_iter().flatten() {
            let v = v.as_str().unwrap();
            if let Some(rel) = v.strip_prefix("./") {
                let host = rel.split(':').next().unwrap();
                assert!(deploy(host).exists(), "mounted {host} exists");
            }
        }
    }
    // nginx: no nginx binary here, so only what can be checked without one: balanced blocks,
    // the WebSocket upgrade headers, long timeouts, and upstreams naming the compose services.
    let conf = read("nginx.conf");
    assert_eq!(conf.matches('{').count(), conf.matches('}').count(), "balanced braces");
    for needle in ["proxy_set_header Upgrade $http_upgrade", "proxy_set_header Connection $connection_upgrade", "proxy_read_timeout 3600s"] {
        assert!(conf.contains(needle), "nginx.conf: {needle}");
    }
    for g in ["gateway1", "gateway2", "gateway3"] {
        assert!(conf.contains(&format!("server {g}:8080")), "nginx upstream {g}");
    }
    // The pages and photos reach the REST node; uploads may be larger than JSON bodies.
    assert!(conf.contains("location / {") && conf.contains("location = /api/v1/uploads {") && conf.contains("client_max_body_size 6m"), "nginx routes the pages and uploads");
    let ingress = read("k8s/ingress.yaml");
    assert!(ingress.contains("- path: /\n") && ingress.contains("proxy-body-size: 6m"), "the ingress routes the pages and uploads");
    let prom: serde_yaml::Value = serde_yaml::from_str(&read("prometheus.yml")).unwrap();
    let targets = format!("{:?}", prom["scrape_configs"][0]["static_configs"][0]["targets"]);
    for g in ["gateway1", "gateway2", "gateway3", "rest"] {
        assert!(targets.contains(&format!("{g}:9464")), "prometheus scrapes {g} on the metrics port: {targets}");
    }
    assert!(read("docker-compose.yml").contains("JBK_METRICS_LISTEN: 0.0.0.0:9464"), "compose serves /metrics on its port");
    for d in ["k8s/gateway-deployment.yaml", "k8s/rest-deployment.yaml"] {
        assert!(read(d).contains("prometheus.io/port: \"9464\""), "{d} is scraped on the metrics port");
    }
    for p in ["grafana/provisioning/datasources/prometheus.yml", "grafana/provisioning/dashboards/jiebanke.yml"] {
        let v: serde_yaml::Value = serde_yaml::from_str(&read(p)).unwrap();
        assert_eq!(v["apiVersion"].as_i64(), Some(1), "{p}");
    }
}

/// Every series the dashboard queries is one a real cluster node exposes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grafana_dashboard_queries_real_metric_names() {
    let Some(db) = TestDb::new(Db::MySql).await else { return };
    let Some(redis) = TestRedis::new() else { return };
    let Some(rabbit) = TestRabbit::new() else { return };
    let app = spawn_app(&db, |c| {
        let mut cl = jiebanke_cluster::ClusterConfig::new(redis.url.clone(), "dash1");
        cl.prefix = redis.prefix.clone();
        c.cluster = Some(cl);
        c.amqp = Some(jiebanke_cluster::AmqpConfig { url: rabbit.url(), prefix: "jbk".into() });
    })
    .await;
    // Traffic, so that every labelled family has a series: frames in and out, an error, and a
    // server close (ten bad frames in a row close with 1008).
    let u = login(&app.http, &app.base(), "dash-user").await;
    let mut c = connect(app.addr, &u.token, Proto::Json).await;
    c.send(serde_json::json!({"type":"ping","id":1})).await;
    for _ in 0..12 {
        c.send_raw(tokio_tungstenite::tungstenite::Message::Text("not json".into())).await;
    }
    let _ = c.expect_close(WAIT).await;
    // The close is counted as the session ends, just after its close frame went out.
    let mut text = String::new();
    for _ in 0..100 {
        text = app.http.get(format!("{}/metrics", app.metrics_base())).send().await.unwrap().text().await.unwrap();
        if text.contains("jbk_ws_closes_total{") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let norm = |s: &str| {
        let mut s = s.to_owned();
        for suffix in ["_total", "_bucket", "_sum", "_count"] {
            if let Some(t) = s.strip_suffix(suffix) {
                s = t.to_owned();
            }
        }
        s
    };
    let exposed: BTreeSet<String> = text.lines().filter_map(|l| l.strip_prefix("# HELP ")).map(|l| norm(l.split(' ').next().unwrap())).collect();
    let dash: Value = serde_json::from_str(&read("grafana/dashboards/jiebanke.json")).expect("dashboard is JSON");
    let re = regex::Regex::new(r"jbk_[a-z_]+").unwrap();
    let mut queried = 0;
    for panel in dash["panels"].as_array().unwrap() {
        for t in panel["targets"].as_array().unwrap() {
            for m in re.find_iter(t["expr"].as_str().unwrap()) {
                queried += 1;
                assert!(exposed.contains(&norm(m.as_str())), "dashboard queries {} which /metrics does not have: {exposed:?}", m.as_str());
            }
        }
    }
    assert!(queried >= 10);
    app.shutdown.cancel();
}
