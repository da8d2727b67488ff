//! The uploads area over HTTP: `POST /api/v1/uploads` (multipart, field `file`) and
//! `GET /uploads/{file}` (the stored, metadata-free bytes with their content type).

use crate::error::ApiError;
use crate::{AuthUser, RestState};
use axum::extract::rejection::PathRejection;
use axum::extract::{DefaultBodyLimit, Multipart, Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use jiebanke_chat_core::uploads::{Upload, MAX_UPLOAD_BYTES};
use jiebanke_chat_core::{CoreError, FieldProblem};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Room for the multipart framing around the largest file.
const MULTIPART_OVERHEAD: usize = 16 * 1024;

pub fn router() -> OpenApiRouter<RestState> {
    OpenApiRouter::new()
        .routes(routes!(upload))
        .layer(DefaultBodyLimit::max(MAX_UPLOAD_BYTES + MULTIPART_OVERHEAD))
        .routes(routes!(serve))
}

/// The form: one part named `file`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct UploadForm {
    /// A JPEG, PNG or WebP image (judged by its bytes), at most 5 MiB.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UploadBody {
    id: String,
    /// Where it is served (`/uploads/<name>.<ext>`): what photo and avatar fields take.
    url: String,
    /// `image/jpeg`, `image/png` or `image/webp`.
    content_type: String,
    size: u64,
}

impl From<&Upload> for UploadBody {
    fn from(up: &Upload) -> Self {
        UploadBody { id: up.id.to_string(), url: up.url(), content_type: up.kind.content_type().into(), size: up.size }
    }
}

fn file_problem(p: &str) -> ApiError {
    CoreError::Fields(vec![FieldProblem::new("file", p)]).into()
}

/// Uploads a photo: checked by its bytes, metadata (EXIF and its location, XMP, comments)
/// stripped, stored in the data dir or object storage.
#[utoipa::path(post, path = "/api/v1/uploads", tag = "uploads",
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    security(("bearer" = [])), responses((status = 201, body = UploadBody)))]
async fn upload(
    State(state): State<RestState>,
    AuthUser(me): AuthUser,
    form: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Result<(StatusCode, Json<UploadBody>), ApiError> {
    let mut form = form.map_err(|e| {
        ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", format!("expected multipart/form-data: {}", e.body_text()))
    })?;
    let mut file = None;
    loop {
        let field = match form.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", "an upload is at most 5 MiB"))
            }
            Err(e) => return Err(ApiError::new(StatusCode::BAD_REQUEST, "bad_request", format!("the form could not be read: {}", e.body_text()))),
        };
        if field.name() != Some("file") {
            continue;
        }
        if file.is_some() {
            return Err(file_problem("send one file per upload"));
        }
        let bytes = field.bytes().await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", "an upload is at most 5 MiB")
            } else {
                ApiError::new(StatusCode::BAD_REQUEST, "bad_request", format!("the file could not be read: {}", e.body_text()))
            }
        })?;
        if bytes.len() > MAX_UPLOAD_BYTES {
            return Err(ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", "an upload is at most 5 MiB"));
        }
        file = Some(bytes.to_vec());
    }
    let raw = file.ok_or_else(|| file_problem("is required (a part named `file`)"))?;
    let up = state.uploads.upload(me, raw).await?;
    Ok((
        StatusCode::CREATED,
        Json(UploadBody::from(&up)),
    ))
}

/// The stored photo, with its content type. Public (anyone with the URL, as avatars are);
/// cached for a year (an upload never changes).
#[utoipa::path(get, path = "/uploads/{file}", tag = "uploads",
    params(("file" = String, Path, description = "`<name>.<ext>` as the upload's url ends")),
    responses((status = 200, description = "the image", content_type = "image/*")))]
async fn serve(State(state): State<RestState>, p: Result<Path<String>, PathRejection>) -> Result<Response, ApiError> {
    let Path(file) = p?;
    let (kind, bytes) = state.uploads.fetch(&file).await?;
    let mut resp = bytes.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind.content_type()));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("default-src 'none'; sandbox"));
    Ok(resp)
}
