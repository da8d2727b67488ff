//! Small real images for the upload tests, built byte by byte (with their metadata to strip).

pub fn crc32(data: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for &b in data {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
        }
    }
    !c
}

pub fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend((data.len() as u32).to_be_bytes());
    let mut body = kind.to_vec();
    body.extend(data);
    out.extend(&body);
    out.extend(crc32(&body).to_be_bytes());
}

/// A 1x1 PNG with a tEXt chunk naming a place and an eXIf chunk.
pub fn png_with_metadata() -> Vec<u8> {
    let mut v = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
    png_chunk(&mut v, b"IHDR", &[0, 0, 0, 1, 0, 0, 0, 1, 8, 0, 0, 0, 0]);
    png_chunk(&mut v, b"tEXt", b"Location\0Lijiang Old Town 26.87N 100.23E");
    png_chunk(&mut v, b"eXIf", b"MM\0*GPSINFO");
    // zlib of a filter byte and one grey pixel.
    png_chunk(&mut v, b"IDAT", &[0x78, 0x9C, 0x63, 0x60, 0x00, 0x00, 0x00, 0x02, 0x00, 0x01]);
    png_chunk(&mut v, b"IEND", &[]);
    v
}

/// A 1x1 JPEG with an EXIF (GPS) segment and an XMP segment.
pub fn jpeg_with_metadata() -> Vec<u8> {
    let mut v = vec![0xFF, 0xD8];
    let seg = |v: &mut Vec<u8>, marker: u8, body: &[u8]| {
        v.extend([0xFF, marker]);
        v.extend(((body.len() + 2) as u16).to_be_bytes());
        v.extend(body);
    };
    seg(&mut v, 0xE0, b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0");
    seg(&mut v, 0xE1, b"Exif\0\0GPS 39.9042N 116.4074E");
    seg(&mut v, 0xE1, b"http://ns.adobe.com/xap/1.0/\0<x:xmpmeta>home address</x:xmpmeta>");
    seg(&mut v, 0xDB, &[0u8; 65]);
    seg(&mut v, 0xC0, &[8, 0, 1, 0, 1, 1, 1, 0x11, 0]);
    seg(&mut v, 0xC4, &[0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    seg(&mut v, 0xDA, &[1, 1, 0, 0, 63, 0]);
    v.extend([0x00, 0xFF, 0xD9]);
    v
}

/// A plain 1x1 PNG.
pub fn one_pixel_png() -> Vec<u8> {
    let mut v = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
    png_chunk(&mut v, b"IHDR", &[0, 0, 0, 1, 0, 0, 0, 1, 8, 0, 0, 0, 0]);
    png_chunk(&mut v, b"IDAT", &[0x78, 0x9C, 0x63, 0x60, 0x00, 0x00, 0x00, 0x02, 0x00, 0x01]);
    png_chunk(&mut v, b"IEND", &[]);
    v
}

/// A PNG whose IHDR claims `w` x `h` (its data is a few bytes: the shape of a decompression
/// bomb, refused before anything would decode it).
pub fn png_claiming(w: u32, h: u32) -> Vec<u8> {
    let mut v = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([8, 0, 0, 0, 0]);
    png_chunk(&mut v, b"IHDR", &ihdr);
    png_chunk(&mut v, b"IDAT", &[0x78, 0x9C, 0x63, 0x60, 0x00, 0x00, 0x00, 0x02, 0x00, 0x01]);
    png_chunk(&mut v, b"IEND", &[]);
    v
}

/// `jpeg_with_metadata` with its frame (SOF0) claiming `w` x `h`.
pub fn jpeg_claiming(w: u16, h: u16) -> Vec<u8> {
    let mut v = jpeg_with_metadata();
    let sof = v.windows(2).position(|p| p == [0xFF, 0xC0]).unwrap();
    v[sof + 5..sof + 7].copy_from_slice(&h.to_be_bytes());
    v[sof + 7..sof + 9].copy_from_slice(&w.to_be_bytes());
    v
}
