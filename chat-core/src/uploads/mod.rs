//! The uploads area: photos (JPEG, PNG, WebP) recognised by their bytes, never their name,
//! refused when their header claims more pixels than `ImageLimits` allow (a decompression
//! bomb: a few KiB that decode to gigabytes in whoever shows them), cut at their real end (a
//! JPEG after its EOI, a PNG after IEND, a WebP after its RIFF chunk: nothing can ride along,
//! such as a ZIP of a JPEG+ZIP polyglot), stripped of metadata (EXIF with its GPS location,
//! XMP, IPTC, comments, text chunks) before they are stored, and kept behind `BlobStore` (the
//! data dir, or S3-compatible object storage). Nothing is ever decoded. Pure: the I/O is the
//! port's.

pub mod port;

pub use port::{BlobStore, UploadStore};

use crate::error::{CoreError, FieldProblem, Result};
use crate::ids::UserId;
use img_parts::{Bytes, ImageEXIF};
use std::sync::Arc;

/// The largest upload (5 MiB).
pub const MAX_UPLOAD_BYTES: usize = 5 * 1024 * 1024;

/// How large a stored photo may be once decoded, judged from its header alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageLimits {
    /// Width × height at most (`JBK_UPLOAD_MAX_PIXELS`): 40,000,000 decode to 160 MB of RGBA.
    pub max_pixels: u64,
    /// Width and height each at most.
    pub max_side: u32,
}

/// The default pixel cap.
pub const DEFAULT_MAX_PIXELS: u64 = 40_000_000;
/// The longest side: beyond what any phone camera takes.
pub const MAX_SIDE: u32 = 8192;

impl Default for ImageLimits {
    fn default() -> Self {
        ImageLimits { max_pixels: DEFAULT_MAX_PIXELS, max_side: MAX_SIDE }
    }
}

impl ImageLimits {
    /// Every size an image's header claims (a frame, a canvas) must be within the limits.
    fn check(&self, sizes: &[(u32, u32)]) -> Result<()> {
        if sizes.is_empty() {
            return Err(bad("has no image frame"));
        }
        for &(w, h) in sizes {
            if w == 0 || h == 0 {
                return Err(bad("图片头中没有尺寸 (its header gives no size)"));
            }
            if w > self.max_side || h > self.max_side {
                let side = self.max_side;
                return Err(bad(&format!("图片过大：{w}×{h} 像素，每边最多 {side} 像素 (is {w}×{h} pixels; at most {side} per side)")));
            }
            let pixels = u64::from(w) * u64::from(h);
            if pixels > self.max_pixels {
                let max = self.max_pixels;
                return Err(bad(&format!("图片像素过多：{w}×{h} = {pixels} 像素，最多 {max} (is {w}×{h} = {pixels} pixels; at most {max})")));
            }
        }
        Ok(())
    }
}

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

/// A JPEG's real length (through its EOI marker) and the size of every frame (SOFn) it has.
#[derive(Debug, PartialEq, Eq)]
struct JpegLayout {
    end: usize,
    frames: Vec<(u32, u32)>,
}

/// Walks a JPEG: segments by their lengths (so that an `FFD9` inside one, such as the end of an
/// EXIF thumbnail in APP1, is skipped), and after each SOS the entropy-coded data, where a data
/// byte 0xFF is always stuffed as `FF00` and `FFD0`-`FFD7` are restart markers: the first other
/// marker ends the scan, and `FFD9` there is the real end. `None` if a segment runs past the
/// bytes or there is no EOI.
fn jpeg_layout(b: &[u8]) -> Option<JpegLayout> {
    let is_sof = |m: u8| matches!(m, 0xC0..=0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF);
    let mut frames = Vec::new();
    let mut i = 2; // after SOI
    loop {
        if *b.get(i)? != 0xFF {
            return None;
        }
        // Any number of fill bytes may come before a marker's code.
        while *b.get(i)? == 0xFF {
            i += 1;
        }
        let marker = b[i];
        i += 1;
        match marker {
            0xD9 => return Some(JpegLayout { end: i, frames }),
            // Restart markers and TEM carry no length.
            0xD0..=0xD7 | 0x01 => continue,
            0x00 | 0xD8 => return None,
            _ => {}
        }
        let len = usize::from(u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?]));
        let body = b.get(i + 2..i.checked_add(len)?)?;
        if is_sof(marker) {
            // Precision, then height and width.
            let h = u16::from_be_bytes([*body.get(1)?, *body.get(2)?]);
            let w = u16::from_be_bytes([*body.get(3)?, *body.get(4)?]);
            frames.push((u32::from(w), u32::from(h)));
        }
        i += len;
        if marker == 0xDA {
            loop {
                let p = i + b.get(i..)?.iter().position(|&x| x == 0xFF)?;
                match *b.get(p + 1)? {
                    0x00 | 0xD0..=0xD7 => i = p + 2,
                    // A fill byte: the marker comes after it.
                    0xFF => i = p + 1,
                    _ => {
                        i = p;
                        break;
                    }
                }
            }
        }
    }
}

fn u24_le(b: &[u8]) -> u32 {
    u32::from(b[0]) | u32::from(b[1]) << 8 | u32::from(b[2]) << 16
}

/// Every size a WebP's headers claim: the VP8X canvas, the VP8 or VP8L frame, each animation
/// frame (ANMF).
fn webp_sizes(w: &img_parts::webp::WebP) -> Vec<(u32, u32)> {
    let mut sizes = Vec::new();
    for c in w.chunks() {
        let Some(d) = c.content().data() else { continue };
        let size = match &c.id() {
            b"VP8X" => d.get(4..10).map(|r| (u24_le(&r[0..3]) + 1, u24_le(&r[3..6]) + 1)),
            b"VP8 " => d.get(6..10).map(|r| (u32::from(u16::from_le_bytes([r[0], r[1]]) & 0x3FFF), u32::from(u16::from_le_bytes([r[2], r[3]]) & 0x3FFF))),
            b"VP8L" => d.get(1..5).map(|r| {
                let bits = u32::from_le_bytes([r[0], r[1], r[2], r[3]]);
                ((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
            }),
            // Offsets X and Y, then width - 1 and height - 1.
            b"ANMF" => d.get(6..12).map(|r| (u24_le(&r[0..3]) + 1, u24_le(&r[3..6]) + 1)),
            _ => None,
        };
        sizes.extend(size);
    }
    sizes
}

/// The image as it will be stored: its kind and its bytes without metadata, and without
/// anything after its end. `invalid` (naming `file`) for anything that is not a whole JPEG,
/// PNG or WebP, is too large, or claims more pixels than `limits` allow (read from its header;
/// nothing is decoded).
pub fn clean_image(mut raw: Vec<u8>, limits: &ImageLimits) -> Result<(ImageKind, Vec<u8>)> {
    if raw.is_empty() {
        return Err(bad("is empty"));
    }
    if raw.len() > MAX_UPLOAD_BYTES {
        return Err(bad("is larger than 5 MiB"));
    }
    let kind = ImageKind::sniff(&raw).ok_or_else(|| bad("must be a JPEG, PNG or WebP image (judged by its bytes)"))?;
    let malformed = || bad("is not a well-formed image of its kind");
    if kind == ImageKind::Jpeg {
        // Cut after the real EOI before anything else reads it: img_parts keeps every byte
        // after the first SOS as scan data, trailing ones too.
        let layout = jpeg_layout(&raw).ok_or_else(malformed)?;
        limits.check(&layout.frames)?;
        raw.truncate(layout.end);
    }
    let bytes = Bytes::from(raw);
    let broken = |_| malformed();
    let out = match kind {
        ImageKind::Jpeg => {
            let mut j = img_parts::jpeg::Jpeg::from_bytes(bytes).map_err(broken)?;
            j.segments_mut().retain(|s| keep_jpeg_segment(s.marker(), s.contents()));
            j.dimensions().ok_or_else(|| bad("has no image frame"))?;
            j.encoder().bytes()
        }
        ImageKind::Png => {
            // Parsing stops at IEND: what follows is not kept.
            let mut p = img_parts::png::Png::from_bytes(bytes).map_err(broken)?;
            let (w, h) = p.dimensions().ok_or_else(|| bad("has no image header"))?;
            limits.check(&[(w, h)])?;
            p.chunks_mut().retain(|c| !PNG_DROP.contains(&c.kind()));
            p.encoder().bytes()
        }
        ImageKind::WebP => {
            let mut w = img_parts::webp::WebP::from_bytes(bytes).map_err(broken)?;
            limits.check(&webp_sizes(&w))?;
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

/// The check every photo and avatar field passes when it is written (values stored earlier
/// stay readable as they are): each value must name an upload of its writer, as
/// `/uploads/<32 hex>.<ext>` or the same file under the public base of the object storage's CDN
/// (`JBK_UPLOADS_PUBLIC_BASE`). So nobody points a profile at another host (that would learn
/// every viewer's address), at a path that is not a photo, or at someone else's photo.
#[async_trait::async_trait]
pub trait PhotoCheck: Send + Sync + 'static {
    /// One problem per value of `values` that is not an upload of `owner`, naming `field[i]`
    /// (or `field` itself when `indexed` is false: a single value).
    async fn problems(&self, owner: UserId, field: &str, values: &[String], indexed: bool) -> Result<Vec<FieldProblem>>;
}

/// The upload a photo value names (its random name and kind), if it names one:
/// `/uploads/<32 lowercase hex>.<jpg|png|webp>`, or the same file under `public_base`.
pub fn upload_named<'a>(raw: &'a str, public_base: Option<&str>) -> Option<(&'a str, ImageKind)> {
    let file = raw.strip_prefix("/uploads/").or_else(|| {
        let base = public_base?.trim_end_matches('/');
        raw.strip_prefix(base)?.strip_prefix('/')
    })?;
    let (name, ext) = file.split_once('.')?;
    let kind = ImageKind::from_ext(ext)?;
    (name.len() == 32 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))).then_some((name, kind))
}

/// A pure check's outcome with the photo problems added: every bad field named, each once (a
/// field the pure check refused already keeps its problem).
pub fn with_photo_problems<T>(checked: Result<T>, photos: Vec<FieldProblem>) -> Result<T> {
    if photos.is_empty() {
        return checked;
    }
    match checked {
        Ok(_) => Err(CoreError::Fields(photos)),
        Err(CoreError::Fields(mut bad)) => {
            for p in photos {
                if !bad.iter().any(|b| b.field == p.field) {
                    bad.push(p);
                }
            }
            Err(CoreError::Fields(bad))
        }
        Err(e) => Err(e),
    }
}

/// What a photo check refuses with.
pub const NOT_AN_UPLOAD: &str = "must be a photo you uploaded (须为你上传的照片): the url of POST /api/v1/uploads";

pub struct UploadService {
    blobs: Arc<dyn BlobStore>,
    uploads: Arc<dyn UploadStore>,
    limits: ImageLimits,
    /// Where the object storage's CDN serves uploads (`JBK_UPLOADS_PUBLIC_BASE`), if anywhere.
    public_base: Option<String>,
}

#[async_trait::async_trait]
impl PhotoCheck for UploadService {
    async fn problems(&self, owner: UserId, field: &str, values: &[String], indexed: bool) -> Result<Vec<FieldProblem>> {
        let mut bad = Vec::new();
        for (i, raw) in values.iter().enumerate() {
            let ok = match upload_named(raw, self.public_base.as_deref()) {
                Some((name, kind)) => self.uploads.by_name(name).await?.is_some_and(|u| u.owner == owner && u.kind == kind),
                None => false,
            };
            if !ok {
                let at = if indexed { format!("{field}[{i}]") } else { field.to_owned() };
                bad.push(FieldProblem::new(at, NOT_AN_UPLOAD));
            }
        }
        Ok(bad)
    }
}

impl UploadService {
    pub fn new(blobs: Arc<dyn BlobStore>, uploads: Arc<dyn UploadStore>, limits: ImageLimits) -> Self {
        UploadService { blobs, uploads, limits, public_base: None }
    }

    /// Photo values may also name uploads under `base` (a CDN in front of object storage).
    pub fn with_public_base(mut self, base: Option<String>) -> Self {
        self.public_base = base.map(|b| b.trim_end_matches('/').to_owned());
        self
    }

    /// Checks, cleans and stores a photo; the blob first, then its row (a blob without a row is
    /// never served; a row never points at a missing blob).
    pub async fn upload(&self, owner: UserId, raw: Vec<u8>) -> Result<Upload> {
        let (kind, clean) = clean_image(raw, &self.limits)?;
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

    #[test]
    fn photo_values_name_uploads() {
        let hex = "0123456789abcdef0123456789abcdef";
        assert_eq!(upload_named(&format!("/uploads/{hex}.jpg"), None), Some((hex, ImageKind::Jpeg)));
        assert_eq!(upload_named(&format!("https://cdn.example.com/u/{hex}.webp"), Some("https://cdn.example.com/u/")), Some((hex, ImageKind::WebP)));
        for bad in [
            format!("https://evil.example/{hex}.jpg"),
            format!("/uploads/../{hex}.jpg"),
            format!("/uploads/{}.jpg", hex.to_uppercase()),
            format!("/uploads/{hex}.gif"),
            format!("/uploads/{hex}"),
            "/uploads/abc.jpg".to_owned(),
            format!("/uploads/{hex}.jpg\u{202E}"),
            format!("https://cdn.example.com/u/x/{hex}.jpg"),
        ] {
            assert_eq!(upload_named(&bad, Some("https://cdn.example.com/u")), None, "{bad}");
        }
        let named = |f: &str| FieldProblem::new(f, "x");
        let merged = with_photo_problems::<()>(Err(CoreError::Fields(vec![named("title"), named("photos[0]")])), vec![named("photos[0]"), named("photos[1]")]);
        let Err(CoreError::Fields(f)) = merged else { panic!() };
        assert_eq!(f.iter().map(|p| p.field.as_str()).collect::<Vec<_>>(), vec!["title", "photos[0]", "photos[1]"]);
        assert!(matches!(with_photo_problems(Ok(1), vec![]), Ok(1)));
    }

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
        let (kind, clean) = clean_image(raw, &ImageLimits::default()).unwrap();
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
        let (kind, clean) = clean_image(webp_with_metadata(), &ImageLimits::default()).unwrap();
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
        let e = clean_image(b"<svg onload=alert(1)>".to_vec(), &ImageLimits::default()).unwrap_err();
        assert!(matches!(e, CoreError::Fields(ref f) if f[0].field == "file"), "{e:?}");
        assert!(clean_image(vec![0xFF, 0xD8, 0xFF, 0xE0], &ImageLimits::default()).is_err(), "a truncated JPEG");
        assert!(clean_image(vec![0xFF, 0xD8, 0xFF].into_iter().chain(vec![0; MAX_UPLOAD_BYTES]).collect(), &ImageLimits::default()).is_err(), "too large");
    }

    // ---- Decompression bombs and trailing bytes ----

    fn crc32(data: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
            }
        }
        !crc
    }

    fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend((data.len() as u32).to_be_bytes());
        let mut c = kind.to_vec();
        c.extend(data);
        out.extend(&c);
        out.extend(crc32(&c).to_be_bytes());
    }

    /// A PNG of `w` x `h` RGB pixels. With `real`, its IDAT is the whole image (zlib, stored
    /// blocks): a decoder shows it. Without, only the header is real: a bomb's shape.
    fn png(w: u32, h: u32, real: bool) -> Vec<u8> {
        let mut v = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
        let mut ihdr = w.to_be_bytes().to_vec();
        ihdr.extend(h.to_be_bytes());
        ihdr.extend([8, 2, 0, 0, 0]);
        png_chunk(&mut v, b"IHDR", &ihdr);
        let raw: Vec<u8> = if real { (0..h).flat_map(|y| std::iter::once(0).chain((0..w * 3).map(move |x| (x + y) as u8))).collect() } else { vec![0; 16] };
        let mut z = vec![0x78, 0x01];
        let blocks: Vec<&[u8]> = raw.chunks(65_535).collect();
        for (i, block) in blocks.iter().enumerate() {
            z.push(u8::from(i + 1 == blocks.len()));
            z.extend((block.len() as u16).to_le_bytes());
            z.extend((!(block.len() as u16)).to_le_bytes());
            z.extend(*block);
        }
        let (mut a, mut b) = (1u32, 0u32);
        for &x in &raw {
            a = (a + u32::from(x)) % 65_521;
            b = (b + a) % 65_521;
        }
        z.extend(((b << 16) | a).to_be_bytes());
        png_chunk(&mut v, b"IDAT", &z);
        png_chunk(&mut v, b"IEND", &[]);
        v
    }

    /// `jpeg_with_metadata` with its frame claiming `w` x `h`.
    fn jpeg_claiming(w: u16, h: u16) -> Vec<u8> {
        let mut v = jpeg_with_metadata();
        let sof = v.windows(2).position(|p| p == [0xFF, 0xC0]).unwrap();
        v[sof + 5..sof + 7].copy_from_slice(&h.to_be_bytes());
        v[sof + 7..sof + 9].copy_from_slice(&w.to_be_bytes());
        v
    }

    fn problem(r: Result<(ImageKind, Vec<u8>)>) -> String {
        match r {
            Err(CoreError::Fields(f)) if f.len() == 1 && f[0].field == "file" => f[0].problem.clone(),
            other => panic!("expected a problem with `file`, got {other:?}"),
        }
    }

    #[test]
    fn headers_claiming_too_many_pixels_are_refused_before_any_decoding() {
        let l = ImageLimits::default();
        // A PNG whose IHDR claims 50,000 x 50,000 (10 GB of RGBA), in a few dozen bytes.
        let p = problem(clean_image(png(50_000, 50_000, false), &l));
        assert!(p.starts_with("图片过大") && p.contains("50000×50000") && p.contains("at most 8192 per side"), "{p}");
        // A JPEG whose SOF claims 65,535 x 65,535.
        let p = problem(clean_image(jpeg_claiming(65_535, 65_535), &l));
        assert!(p.contains("65535×65535"), "{p}");
        // One side over 8,192 with few pixels.
        let p = problem(clean_image(png(8_193, 1, false), &l));
        assert!(p.contains("8193×1") && p.contains("per side"), "{p}");
        assert!(problem(clean_image(jpeg_claiming(1, 9_000), &l)).contains("1×9000"));
        // Sides within 8,192 but over the pixel cap; the cap itself passes.
        let p = problem(clean_image(png(8_000, 5_001, false), &l));
        assert!(p.starts_with("图片像素过多") && p.contains("40008000") && p.contains("at most 40000000"), "{p}");
        assert!(clean_image(png(8_000, 5_000, false), &l).is_ok(), "exactly at the cap");
        assert!(clean_image(jpeg_claiming(8_000, 5_000), &l).is_ok());
        // A frame of height 0 (to be given by a DNL after the scan) says nothing: refused.
        assert!(problem(clean_image(jpeg_claiming(100, 0), &l)).contains("no size"));
    }

    #[test]
    fn a_real_image_under_the_cap_passes_and_one_over_it_does_not() {
        let l = ImageLimits { max_pixels: 12, max_side: MAX_SIDE };
        let (kind, out) = clean_image(png(4, 3, true), &l).unwrap();
        assert_eq!((kind, out), (ImageKind::Png, png(4, 3, true)), "kept whole");
        assert!(problem(clean_image(png(4, 4, true), &l)).contains("at most 12"));
        // With the defaults, a real photo-sized PNG.
        assert!(clean_image(png(640, 480, true), &ImageLimits::default()).is_ok());
    }

    /// A 1x1 extended WebP whose VP8X canvas (or an animation frame) claims `w` x `h`.
    fn webp_claiming(w: u32, h: u32, in_frame: bool) -> Vec<u8> {
        let mut v = webp_with_metadata();
        let (cw, ch) = if in_frame { (1, 1) } else { (w, h) };
        let at = v.windows(4).position(|p| p == b"VP8X").unwrap() + 8 + 4;
        v[at..at + 3].copy_from_slice(&(cw - 1).to_le_bytes()[..3]);
        v[at + 3..at + 6].copy_from_slice(&(ch - 1).to_le_bytes()[..3]);
        if in_frame {
            let mut frame = vec![0u8; 16];
            frame[6..9].copy_from_slice(&(w - 1).to_le_bytes()[..3]);
            frame[9..12].copy_from_slice(&(h - 1).to_le_bytes()[..3]);
            v.extend(b"ANMF");
            v.extend(16u32.to_le_bytes());
            v.extend(frame);
            let riff = (v.len() - 8) as u32;
            v[4..8].copy_from_slice(&riff.to_le_bytes());
        }
        v
    }

    #[test]
    fn webp_canvas_and_frames_are_checked() {
        let l = ImageLimits::default();
        assert!(problem(clean_image(webp_claiming(16_384, 16_384, false), &l)).contains("16384×16384"));
        assert!(problem(clean_image(webp_claiming(9_000, 2, true), &l)).contains("9000×2"), "an animation frame larger than the canvas");
        assert!(clean_image(webp_claiming(800, 600, false), &l).is_ok());
    }

    #[test]
    fn a_jpeg_is_cut_after_its_end_marker() {
        let l = ImageLimits::default();
        let jpeg = jpeg_with_metadata();
        let (_, clean) = clean_image(jpeg.clone(), &l).unwrap();
        // A JPEG+ZIP polyglot: the ZIP after the EOI is not stored.
        let zip = b"PK\x03\x04\x14\0\0\0\0\0payload.txt secret PK\x05\x06\0\0\0\0\x01\0\x01\0".to_vec();
        let (_, cut) = clean_image([jpeg.clone(), zip].concat(), &l).unwrap();
        assert_eq!(cut, clean, "nothing after the EOI is kept");
        assert!(cut.ends_with(&[0xFF, 0xD9]) && !cut.windows(2).any(|w| w == b"PK"));
        // A JPEG with no EOI (nothing says where it ends) is refused.
        assert!(problem(clean_image(jpeg[..jpeg.len() - 2].to_vec(), &l)).contains("well-formed"));
    }

    /// A 1x1 JPEG with an EXIF thumbnail (a whole JPEG, `FFD9` and all, inside APP1) and scan
    /// data with stuffed bytes, restart markers and fill bytes.
    fn jpeg_with_thumbnail() -> (Vec<u8>, Vec<u8>) {
        let mut v = vec![0xFF, 0xD8];
        let seg = |v: &mut Vec<u8>, marker: u8, body: &[u8]| {
            v.extend([0xFF, marker]);
            v.extend(((body.len() + 2) as u16).to_be_bytes());
            v.extend(body);
        };
        let mut exif = b"Exif\0\0MM\0*\0\0\0\x08".to_vec();
        exif.extend([0xFF, 0xD8, 0xFF, 0xDB, 0x00, 0x04, 0x01, 0x02, 0xFF, 0xD9]);
        exif.extend(b"after the thumbnail");
        seg(&mut v, 0xE1, &exif);
        seg(&mut v, 0xDB, &[0u8; 65]);
        seg(&mut v, 0xC0, &[8, 0, 1, 0, 1, 1, 1, 0x11, 0]);
        seg(&mut v, 0xC4, &[0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        seg(&mut v, 0xDA, &[1, 1, 0, 0, 63, 0]);
        let scan = vec![0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD0, 0x56, 0xFF, 0x00, 0xFF, 0xD1, 0x78, 0xFF, 0xFF, 0xD9];
        v.extend(&scan);
        (v, scan)
    }

    #[test]
    fn an_exif_thumbnails_end_marker_does_not_cut_the_photo() {
        let (jpeg, scan) = jpeg_with_thumbnail();
        let layout = jpeg_layout(&jpeg).unwrap();
        assert_eq!(layout, JpegLayout { end: jpeg.len(), frames: vec![(1, 1)] }, "the real end, after the scan");
        let (_, clean) = clean_image([jpeg.clone(), b"trailing".to_vec()].concat(), &ImageLimits::default()).unwrap();
        assert!(clean.ends_with(&scan), "the whole scan is kept, stuffed bytes and restarts too");
        assert!(!String::from_utf8_lossy(&clean).contains("thumbnail"), "the EXIF segment itself is stripped");
        let j = img_parts::jpeg::Jpeg::from_bytes(Bytes::from(clean)).unwrap();
        assert_eq!(j.dimensions(), Some((1, 1)));
        // A segment running past the bytes is not a JPEG.
        assert_eq!(jpeg_layout(&jpeg[..20]), None);
    }
}
