#!/usr/bin/env bash
# The pages' third-party files, vendored from the npm registry at pinned versions (no build
# step, no CDN): `web/vendor.sh` copies them in; `web/vendor.sh --check` (run by .ci/run) fails
# unless every committed copy is byte for byte the package's file. Bumping a version: change it
# here, run the script, rename the directory in the imports (web/assets/lib/vue.js, html.js;
# tests/browser/mod.rs for axe-core) and commit.
set -euo pipefail
cd "$(dirname "$0")/.."

VUE=3.5.46
HTM=3.1.1
AXE=4.14.1

# package@version  file in the package  committed copy
FILES=(
    "vue@$VUE package/dist/vue.runtime.esm-browser.prod.js web/assets/vendor/vue-$VUE/vue.runtime.esm-browser.prod.js"
    "vue@$VUE package/LICENSE web/assets/vendor/vue-$VUE/LICENSE.txt"
    "htm@$HTM package/dist/htm.module.js web/assets/vendor/htm-$HTM/htm.module.js"
    "htm@$HTM package/LICENSE web/assets/vendor/htm-$HTM/LICENSE.txt"
    "axe-core@$AXE package/axe.min.js tests/browser/axe-$AXE.min.js"
    "axe-core@$AXE package/LICENSE tests/browser/axe-LICENSE.txt"
)

check=false
[ "${1:-}" = "--check" ] && check=true

command -v npm >/dev/null || { echo "vendor.sh: npm is needed (Node.js)"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for pkg in "vue@$VUE" "htm@$HTM" "axe-core@$AXE"; do
    dir="$tmp/$pkg"
    mkdir -p "$dir"
    tarball=$(cd "$dir" && npm pack --silent "$pkg")
    tar -xzf "$dir/$tarball" -C "$dir"
done

status=0
for line in "${FILES[@]}"; do
    read -r pkg inner copy <<<"$line"
    if $check; then
        if ! cmp -s "$tmp/$pkg/$inner" "$copy"; then
            echo "vendor.sh: $copy is not $pkg's $inner"
            status=1
        fi
    else
        mkdir -p "$(dirname "$copy")"
        cp "$tmp/$pkg/$inner" "$copy"
        echo "vendored $pkg $inner -> $copy"
    fi
done
$check && [ $status -eq 0 ] && echo "vendor.sh: every vendored file matches its npm package"
exit $status
