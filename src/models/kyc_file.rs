//! The files of KYC document pages, checked before anything is sent to Mangopay.
//!
//! Mangopay takes PDF, JPEG and PNG files (its older guides also GIF), each uploaded
//! base64-encoded as one page, up to 5 pages a document ("Create a KYC Document Page"), refuses
//! a file "too small to be readable" and a request body above 10 MB. The API reference gives no
//! byte bounds for files, so [`FileLimits::default`] takes the narrowest ones Mangopay's guides
//! have used: at least 32 KiB (what an identity proof needs; other types need 1 KiB), at most
//! 7,500,000 bytes (10,000,000 characters of base64), GIF refused. A file this library accepts
//! is one Mangopay accepts, whichever of them applies; each bound is configurable.
//!
//! The format is read from the content (its signature), never from a file name, and the bytes
//! themselves are never kept: only their size and SHA-256 (Mangopay forbids platforms to keep
//! verification documents).

use std::fmt;

use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::validate::{FieldErrorKind, ValidationErrors};

/// The file formats Mangopay takes for a KYC page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileFormat {
    /// `%PDF` within the first 1,024 bytes.
    Pdf,
    /// `FF D8 FF`.
    Jpeg,
    /// `GIF8`.
    Gif,
    /// `89 50 4E 47`.
    Png,
}

impl FileFormat {
    /// The format `bytes` are in, read from their content; `None` for any other content.
    pub fn of(bytes: &[u8]) -> Option<FileFormat> {
        if infer::archive::is_pdf(bytes) {
            Some(FileFormat::Pdf)
        } else if infer::image::is_jpeg(bytes) {
            Some(FileFormat::Jpeg)
        } else if infer::image::is_png(bytes) {
            Some(FileFormat::Png)
        } else if infer::image::is_gif(bytes) {
            Some(FileFormat::Gif)
        } else {
            None
        }
    }

    /// Reads a name written by [`as_str`](Self::as_str).
    pub fn from_name(name: &str) -> Option<FileFormat> {
        [
            FileFormat::Pdf,
            FileFormat::Jpeg,
            FileFormat::Gif,
            FileFormat::Png,
        ]
        .into_iter()
        .find(|f| f.as_str() == name)
    }

    /// The name used in messages and stored on a page's row (`PDF`, `JPEG`, `GIF`, `PNG`).
    pub fn as_str(self) -> &'static str {
        match self {
            FileFormat::Pdf => "PDF",
            FileFormat::Jpeg => "JPEG",
            FileFormat::Gif => "GIF",
            FileFormat::Png => "PNG",
        }
    }
}

impl fmt::Display for FileFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The bounds a page file is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileLimits {
    /// The smallest file, in bytes.
    pub min_bytes: u64,
    /// The largest file, in bytes.
    pub max_bytes: u64,
    /// The most pages one document may have.
    pub max_pages: usize,
    /// Whether GIF files are sent (Mangopay's current guide lists only PDF, JPEG and PNG).
    pub accept_gif: bool,
}

impl Default for FileLimits {
    /// At least 32 KiB, at most 7,500,000 bytes, 5 pages a document, no GIF.
    fn default() -> Self {
        FileLimits {
            min_bytes: 32 * 1024,
            max_bytes: 7_500_000,
            max_pages: 5,
            accept_gif: false,
        }
    }
}

/// How KYC page files are handled: the checks, and where copies of files handed over as bytes
/// wait for their upload. Set with [`Db::with_kyc`](crate::Db::with_kyc).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KycSettings {
    /// The bounds every page file is checked against before it is recorded or sent.
    pub limits: FileLimits,
    /// Where [`MangopayPage::add_bytes`](crate::MangopayPage::add_bytes) stages its copies
    /// (created when needed, files readable by this user only). It must be reachable by the
    /// workers that upload the pages; default: `diesel-mangopay-pages` in the system's
    /// temporary directory.
    pub staging_dir: std::path::PathBuf,
}

impl Default for KycSettings {
    fn default() -> Self {
        KycSettings {
            limits: FileLimits::default(),
            staging_dir: std::env::temp_dir().join("diesel-mangopay-pages"),
        }
    }
}

/// What is kept of a checked page file: its format, size and SHA-256, never its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileFacts {
    /// The format read from the content.
    pub format: FileFormat,
    /// The size in bytes.
    pub size: u64,
    /// The SHA-256 of the bytes, lower-case hex.
    pub sha256: String,
}

/// Checks `bytes` as the page file of field `field` against `limits`: a format Mangopay takes
/// (by content), not empty, within the size bounds. Every problem is a field error; nothing is
/// sent.
pub fn check_page_file(
    field: &'static str,
    bytes: &[u8],
    limits: &FileLimits,
) -> Result<FileFacts, ValidationErrors> {
    let mut errors = ValidationErrors::new();
    let size = bytes.len() as u64;
    let format = FileFormat::of(bytes);
    let accepted = match format {
        Some(FileFormat::Gif) => limits.accept_gif,
        other => other.is_some(),
    };
    if bytes.is_empty() {
        errors.push(field, FieldErrorKind::Required);
    } else if !accepted {
        let formats = if limits.accept_gif {
            "PDF, JPEG, PNG or GIF"
        } else {
            "PDF, JPEG or PNG"
        };
        errors.push(
            field,
            FieldErrorKind::NotAllowed(format!(
                "must be a {formats} file (read from its content, not its name)"
            )),
        );
    }
    if !bytes.is_empty() && size < limits.min_bytes {
        errors.push(
            field,
            FieldErrorKind::NotAllowed(format!(
                "is {size} bytes: too small to be readable (at least {} bytes)",
                limits.min_bytes
            )),
        );
    }
    if size > limits.max_bytes {
        errors.push(
            field,
            FieldErrorKind::NotAllowed(format!(
                "is {size} bytes: too large (at most {} bytes)",
                limits.max_bytes
            )),
        );
    }
    errors.into_result()?;
    Ok(FileFacts {
        format: format.expect("checked above"),
        size,
        sha256: hex(&Sha256::digest(bytes)),
    })
}

/// The body of `POST .../pages` for `bytes`: `{"File": "<base64>"}`.
pub fn page_body(bytes: &[u8]) -> serde_json::Value {
    serde_json::json!({ "File": base64::engine::general_purpose::STANDARD.encode(bytes) })
}

fn hex(bytes: &[u8]) -> String {
    use fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `size` bytes starting with `head`.
    fn file(head: &[u8], size: usize) -> Vec<u8> {
        let mut bytes = head.to_vec();
        bytes.resize(size, 0x20);
        bytes
    }

    const PDF: &[u8] = b"%PDF-1.7\n";
    const JPEG: &[u8] = &[0xFF, 0xD8, 0xFF, 0xE0];
    const PNG: &[u8] = &[0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];
    const GIF: &[u8] = b"GIF89a";

    #[test]
    fn the_four_formats_are_read_from_their_content() {
        let limits = FileLimits {
            accept_gif: true,
            ..FileLimits::default()
        };
        for (head, format) in [
            (PDF, FileFormat::Pdf),
            (JPEG, FileFormat::Jpeg),
            (PNG, FileFormat::Png),
            (GIF, FileFormat::Gif),
        ] {
            let facts = check_page_file("file", &file(head, 40_000), &limits).unwrap();
            assert_eq!(facts.format, format);
            assert_eq!(facts.size, 40_000);
            assert_eq!(facts.sha256.len(), 64);
        }
        // A PDF header may come after some leading bytes, as PDF readers allow.
        let mut late = vec![b' '; 100];
        late.extend_from_slice(PDF);
        assert_eq!(FileFormat::of(&late), Some(FileFormat::Pdf));
    }

    #[test]
    fn anything_else_is_refused_whatever_it_is_called() {
        let limits = FileLimits::default();
        let text = file(b"passport scan.pdf: not really", 40_000);
        let e = check_page_file("file", &text, &limits).unwrap_err();
        assert!(e.has("file") && e.errors().len() == 1, "{e:?}");
        assert!(e.to_string().contains("PDF, JPEG or PNG"), "{e}");
        let zip = file(b"PK\x03\x04", 40_000);
        assert!(check_page_file("file", &zip, &limits).is_err());
        // GIF only when asked for.
        assert!(check_page_file("file", &file(GIF, 40_000), &limits).is_err());
    }

    #[test]
    fn empty_tiny_and_oversized_files_are_refused() {
        let limits = FileLimits::default();
        let e = check_page_file("file", &[], &limits).unwrap_err();
        assert_eq!(e.errors()[0].kind(), &FieldErrorKind::Required);
        let e = check_page_file("file", &file(PNG, 32 * 1024 - 1), &limits).unwrap_err();
        assert!(e.to_string().contains("too small"), "{e}");
        assert!(check_page_file("file", &file(PNG, 32 * 1024), &limits).is_ok());
        assert!(check_page_file("file", &file(PDF, 7_500_000), &limits).is_ok());
        assert_eq!(
            page_body(&file(PDF, 7_500_000))["File"]
                .as_str()
                .unwrap()
                .len(),
            10_000_000
        );
        let e = check_page_file("file", &file(PDF, 7_500_001), &limits).unwrap_err();
        assert!(e.to_string().contains("too large"), "{e}");
        let relaxed = FileLimits {
            min_bytes: 1,
            accept_gif: true,
            ..limits
        };
        assert!(check_page_file("file", &file(GIF, 10), &relaxed).is_ok());
    }

    #[test]
    fn the_sha256_is_that_of_the_bytes_and_the_body_is_base64() {
        let facts = check_page_file(
            "file",
            b"GIF89a",
            &FileLimits {
                min_bytes: 1,
                accept_gif: true,
                ..FileLimits::default()
            },
        )
        .unwrap();
        assert_eq!(
            facts.sha256,
            "610f5ae4d76e332636a17bd357fd6ce99029316a99d320280d4d77a746bf29e8"
        );
        assert_eq!(page_body(b"GIF89a")["File"], "R0lGODlh");
    }
}
