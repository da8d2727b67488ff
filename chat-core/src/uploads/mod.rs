//! The uploads area: photos (JPEG, PNG, WebP) recognised by their bytes, never their name,
//! stripped of metadata (EXIF with its GPS location, XMP, IPTC, comments, text chunks) before
//! they are stored, and kept behind `BlobStore` (the data dir, or S3-compatible object storage).
//! Pure: the I/O is the port's.

pub mod port;

pub use port::{BlobStore, UploadStore};

use crate::error::{CoreError, FieldProblem, Result};
use crate::ids::UserId;
use img_parts::{Bytes, ImageEXIF};
use std::sync::Arc;

/// The largest upload (5 MiB).
pub const MAX_UPLOAD_BYTES: usize = 5 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageKind {
    Jpeg,
    Png,
    WebP,
}

impl ImageKind {
    /// What the bytes are, by their signature.
    pub fn sniff(b: &[u8]) -> Option<Self> {
        if b.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(ImageKind::Jpeg)
        } else if b.starts_with(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]) {
            Some(ImageKind::Png)
        } else if b.len() >= 12 && &b[..4] == b"RIFF" && &b[8..12] == b"WEBP" {
            Some(ImageKind::WebP)
        } else {
            None
        }
    }
    pub fn content_type(self) -> &'static str {
        match self {
            ImageKind::Jpeg => "image/jpeg",
            ImageKind::Png => "image/png",
            ImageKind::WebP => "image/webp",
        }
    }
    pub fn ext(self) -> &'static str {
        match self {
            ImageKind::Jpeg => "jpg",
            ImageKind::Png => "png",
            ImageKind::WebP => "webp",
        }
    }
    pub fn from_ext(ext: &str) -> Option<Self> {
        Some(match ext {
            "jpg" => ImageKind::Jpeg,
            "png" => ImageKind::Png,
            "webp" => ImageKind::WebP,
            _ => return None,
        })
    }
}

fn bad(problem: &str) -> CoreError {
    CoreError::Fields(vec![FieldProblem::new("file", problem)])
}

/// JPEG markers kept: APP0 (JFIF), APP2 only for an ICC profile (colour, not about anyone),
/// APP14 (Adobe colour transform); every other APPn (APP1 is EXIF and XMP, APP13 IPTC) and
/// comments go.
fn keep_jpeg_segment(marker: u8, contents: &[u8]) -> bool {
    match marker {
        0xE0 | 0xEE => true,
        0xE2 => contents.starts_with(b"ICC_PROFILE\0"),
        0xE1 | 0xE3..=0xED | 0xEF | 0xFE => false,
        _ => true,
    }
}

/// PNG chunks dropped: EXIF, the text chunks (which carry XMP and arbitrary metadata) and time.
const PNG_DROP: [[u8; 4]; 5] = [*b"eXIf", *b"tEXt", *b"zTXt", *b"iTXt", *b"tIME"];

/// The image as it will be stored: its kind and its bytes without metadata. `invalid` (naming
/// `file`) for anything that is not a whole JPEG, PNG or WebP, or is too large.
pub fn clean_image(raw: Vec<u8>) -> Result<(ImageKind, Vec<u8>)> {
    if raw.is_empty() {
        return Err(bad("is empty"));
    }
    if raw.len() > MAX_UPLOAD_BYTES {
        return Err(bad("is larger than 5 MiB"));
    }
    let kind = ImageKind::sniff(&raw).ok_or_else(|| bad("must be a JPEG, PNG or WebP image (judged by its bytes)"))?;
    let bytes = Bytes::from(raw);
    let broken = |_| bad("is not a well-formed image of its kind");
    let out = match kind {
        ImageKind::Jpeg => {
            let mut j = img_parts::jpeg::Jpeg::from_bytes(bytes).map_err(broken)?;
            j.segments_mut().retain(|s| keep_jpeg_segment(s.marker(), s.contents()));
            j.dimensions().ok_or_else(|| bad("has no image frame"))?;
            j.encoder().bytes()
        }
        ImageKind::Png => {
            let mut p = img_parts::png::Png::from_bytes(bytes).map_err(broken)?;
            p.chunks_mut().retain(|c| !PNG_DROP.contains(&c.kind()));
            p.dimensions().ok_or_else(|| bad("has no image header"))?;
            p.encoder().bytes()
        }
        ImageKind::WebP => {
            let mut w = img_parts::webp::WebP::from_bytes(bytes).map_err(broken)?;
            w.remove_chunks_by_id(*b"XMP ");
            // Removes the EXIF chunk and recomputes the VP8X flags.
            w.set_exif(None);
            w.dimensions().ok_or_else(|| bad("has no image frame"))?;
            w.encoder().bytes()
        }
    };
    Ok((kind, out.to_vec()))
}

/// A stored upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    pub id: i64,
    pub owner: UserId,
    /// The random name the URL carries (`/uploads/<name>.<ext>`): unguessable.
    pub name: String,
    pub kind: ImageKind,
    pub size: u64,
    pub created_at: i64,
}

impl Upload {
    /// The path it is served at.
    pub fn url(&self) -> String {
        format!("/uploads/{}.{}", self.name, self.kind.ext())
    }
    fn object_key(name: &str, kind: ImageKind) -> String {
        format!("uploads/{name}.{}", kind.ext())
    }
}

pub struct UploadService {
    blobs: Arc<dyn BlobStore>,
    uploads: Arc<dyn UploadStore>,
}

impl UploadService {
    pub fn new(blobs: Arc<dyn BlobStore>, uploads: Arc<dyn UploadStore>) -> Self {
        UploadService { blobs, uploads }
    }

    /// Checks, cleans and stores a photo; the blob first, then its row (a blob without a row is
    /// never served; a row never points at a missing blob).
    pub async fn upload(&self, owner: UserId, raw: Vec<u8>) -> Result<Upload> {
        let (kind, clean) = clean_image(raw)?;
        let mut token = [0u8; 16];
        getrandom::fill(&mut token).map_err(|e| CoreError::unavailable(format!("no randomness: {e}")))?;
        let name: String = token.iter().map(|b| format!("{b:02x}")).collect();
        let size = clean.len() as u64;
        self.blobs.put(&Upload::object_key(&name, kind), clean, kind.content_type()).await?;
        self.uploads.record(owner, &name, kind, size, crate::now_ms()).await
    }

    /// My uploads, oldest first (for my export).
    pub async fn owned_by(&self, owner: UserId) -> Result<Vec<Upload>> {
        self.uploads.owned_by(owner).await
    }

    /// Deletes every upload of `owner` (their account is being erased): each blob, then its
    /// row, so that a failure part way leaves rows to find on the next try and never a blob
    /// nobody can find. A URL of a deleted upload answers 404 from the moment its blob is gone.
    pub async fn erase_owner(&self, owner: UserId) -> Result<usize> {
        let list = self.uploads.owned_by(owner).await?;
        for up in &list {
            self.blobs.delete(&Upload::object_key(&up.name, up.kind)).await?;
            self.uploads.forget(up.id).await?;
        }
        Ok(list.len())
    }

    /// The bytes and kind of `/uploads/<file>`, if it is one.
    pub async fn fetch(&self, file: &str) -> Result<(ImageKind, Vec<u8>)> {
        let missing = || CoreError::NotFound("upload".into());
        let (name, ext) = file.rsplit_once('.').ok_or_else(missing)?;
        let kind = ImageKind::from_ext(ext).ok_or_else(missing)?;
        if name.len() != 32 || !name.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) {
            return Err(missing());
        }
        let up = self.uploads.by_name(name).await?.ok_or_else(missing)?;
        if up.kind != kind {
            return Err(missing());
        }
        let bytes = self.blobs.get(&Upload::object_key(name, kind)).await?.ok_or_else(missing)?;
        Ok((kind, bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 1x1 JPEG with an EXIF (GPS) segment, a comment and an XMP segment.
    pub fn jpeg_with_metadata() -> Vec<u8> {
        let mut v = vec![0xFF, 0xD8];
        let seg = |v: &mut Vec<u8>, marker: u8, body: &[u8]| {
            v.extend([0xFF, marker]);
            v.extend(((body.len() + 2) as u16).to_be_bytes());
            v.extend(body);
        };
        seg(&mut v, 0xE0, b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0");
        seg(&mut v, 0xE1, b"Exif\0\0GPS 39.9042N 116.4074E");
        seg(&mut v, 0xE1, b"http://ns.adobe.com/xap/1.0/\0<x:xmpmeta>secret place</x:xmpmeta>");
        seg(&mut v, 0xFE, b"a comment about someone");
        seg(&mut v, 0xDB, &[0u8; 65]);
        seg(&mut v, 0xC0, &[8, 0, 1, 0, 1, 1, 1, 0x11, 0]);
        seg(&mut v, 0xC4, &[0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        seg(&mut v, 0xDA, &[1, 1, 0, 0, 63, 0]);
        v.extend([0x00, 0xFF, 0xD9]);
        v
    }

    #[test]
    fn jpeg_metadata_is_stripped_and_the_frame_kept() {
        let raw = jpeg_with_metadata();
        let (kind, clean) = clean_image(raw).unwrap();
        assert_eq!(kind, ImageKind::Jpeg);
        let text = String::from_utf8_lossy(&clean);
        for gone in ["Exif", "GPS", "xmpmeta", "comment"] {
            assert!(!text.contains(gone), "{gone} left in {text:?}");
        }
        assert!(text.contains("JFIF"));
        let j = img_parts::jpeg::Jpeg::from_bytes(Bytes::from(clean)).unwrap();
        assert_eq!(j.dimensions(), Some((1, 1)));
    }

    /// A 1x1 extended WebP (VP8X with the EXIF and XMP flags) carrying both chunks.
    fn webp_with_metadata() -> Vec<u8> {
        let chunk = |id: &[u8; 4], data: &[u8]| {
            let mut c = id.to_vec();
            c.extend((data.len() as u32).to_le_bytes());
            c.extend(data);
            if data.len() % 2 == 1 {
                c.push(0);
            }
            c
        };
        let mut body = b"WEBP".to_vec();
        body.extend(chunk(b"VP8X", &[0x0C, 0, 0, 0, 0, 0, 0, 0, 0, 0]));
        body.extend(chunk(b"VP8L", &[0x2F, 0, 0, 0, 0x10, 0x07, 0x10, 0x11, 0x11, 0x88, 0x88, 0xFE, 0x07, 0x00]));
        body.extend(chunk(b"EXIF", b"MM\0*GPS 26.87N 100.23E"));
        body.extend(chunk(b"XMP ", b"<x:xmpmeta>home address</x:xmpmeta>"));
        let mut v = b"RIFF".to_vec();
        v.extend((body.len() as u32).to_le_bytes());
        v.extend(body);
        v
    }

    #[test]
    fn webp_metadata_is_stripped_and_its_flags_cleared() {
        let (kind, clean) = clean_image(webp_with_metadata()).unwrap();
        assert_eq!(kind, ImageKind::WebP);
        let text = String::from_utf8_lossy(&clean);
        for gone in ["EXIF", "XMP ", "GPS", "xmpmeta"] {
            assert!(!text.contains(gone), "{gone} left in {text:?}");
        }
        let w = img_parts::webp::WebP::from_bytes(Bytes::from(clean.clone())).unwrap();
        assert!(w.has_chunk(*b"VP8L"), "the image itself stays");
        if let Some(x) = w.chunk_by_id(*b"VP8X") {
            let flags = x.content().data().unwrap()[0];
            assert_eq!(flags & 0x0C, 0, "the EXIF and XMP flags are cleared");
        }
        let riff_len = u32::from_le_bytes(clean[4..8].try_into().unwrap()) as usize;
        assert_eq!(riff_len + 8, clean.len(), "the RIFF size matches");
    }

    #[test]
    fn kinds_by_bytes_not_names() {
        assert_eq!(ImageKind::sniff(b"GIF89a...."), None);
        assert_eq!(ImageKind::sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some(ImageKind::WebP));
        let e = clean_image(b"<svg onload=alert(1)>".to_vec()).unwrap_err();
        assert!(matches!(e, CoreError::Fields(ref f) if f[0].field == "file"), "{e:?}");
        assert!(clean_image(vec![0xFF, 0xD8, 0xFF, 0xE0]).is_err(), "a truncated JPEG");
        assert!(clean_image(vec![0xFF, 0xD8, 0xFF].into_iter().chain(vec![0; MAX_UPLOAD_BYTES]).collect()).is_err(), "too large");
    }
}
