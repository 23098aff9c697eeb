//! Reading just enough of an ELF executable to tell whether it is statically linked.
//!
//! A dynamically linked executable names its loader in a `PT_INTERP` program header (that is
//! what `ldd` and the kernel read); a static one has none. Parsing the ELF header and the
//! program header table is a few dozen lines, so no crate is needed, and the check is exact
//! where `ldd`'s output would be a string to interpret (and `ldd` may not be installed).

use std::path::Path;

/// Program header type of the interpreter (dynamic loader) path.
const PT_INTERP: u32 = 3;
/// Program header type of the dynamic linking table.
const PT_DYNAMIC: u32 = 2;

/// What the ELF headers of an executable say about its linking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElfLinking {
    /// `true` for a 64-bit ELF, `false` for 32-bit.
    pub class64: bool,
    /// The `e_machine` value (62 = x86-64, 183 = AArch64).
    pub machine: u16,
    /// The interpreter path named by `PT_INTERP`, if the executable has one.
    pub interpreter: Option<String>,
    /// Whether a `PT_DYNAMIC` segment is present.
    pub has_dynamic: bool,
    /// How many program headers were read.
    pub program_headers: usize,
}

impl ElfLinking {
    /// Statically linked: no loader is named, so the kernel runs it with nothing beside it.
    pub fn is_static(&self) -> bool {
        self.interpreter.is_none()
    }
}

/// Why a file could not be read as ELF.
#[derive(Debug, thiserror::Error)]
pub enum ElfError {
    /// The file could not be read.
    #[error("cannot read {0}: {1}")]
    Read(String, std::io::Error),
    /// The file is not a well-formed ELF executable.
    #[error("{0} is not a readable ELF file: {1}")]
    Malformed(String, &'static str),
}

/// Read the ELF header and program headers of `path`.
pub fn inspect(path: &Path) -> Result<ElfLinking, ElfError> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| ElfError::Read(shown.clone(), e))?;
    parse(&bytes).map_err(|why| ElfError::Malformed(shown, why))
}

/// Parse ELF bytes (see [`inspect`]).
pub fn parse(bytes: &[u8]) -> Result<ElfLinking, &'static str> {
    if bytes.len() < 52 || &bytes[..4] != b"\x7fELF" {
        return Err("no ELF magic");
    }
    let class64 = match bytes[4] {
        1 => false,
        2 => true,
        _ => return Err("unknown ELF class"),
    };
    let little = match bytes[5] {
        1 => true,
        2 => false,
        _ => return Err("unknown byte order"),
    };
    let read = |at: usize, len: usize| -> Result<u64, &'static str> {
        let field = bytes.get(at..at + len).ok_or("header runs past the end of the file")?;
        let mut value = 0u64;
        for (i, b) in field.iter().enumerate() {
            let shift = if little { i } else { len - 1 - i };
            value |= u64::from(*b) << (8 * shift);
        }
        Ok(value)
    };
    let machine = read(18, 2)? as u16;
    // e_phoff, e_phentsize and e_phnum sit at different offsets in the two classes.
    let (phoff, phentsize, phnum) = if class64 {
        (read(32, 8)?, read(54, 2)?, read(56, 2)?)
    } else {
        (read(28, 4)?, read(42, 2)?, read(44, 2)?)
    };
    let (phoff, phentsize, phnum) = (phoff as usize, phentsize as usize, phnum as usize);
    let mut interpreter = None;
    let mut has_dynamic = false;
    for i in 0..phnum {
        let at = phoff + i * phentsize;
        let p_type = read(at, 4)? as u32;
        // p_offset and p_filesz: 64-bit at +8/+32, 32-bit at +4/+16.
        let (offset, size) = if class64 {
            (read(at + 8, 8)?, read(at + 32, 8)?)
        } else {
            (read(at + 4, 4)?, read(at + 16, 4)?)
        };
        match p_type {
            PT_INTERP => {
                let raw = bytes
                    .get(offset as usize..(offset + size) as usize)
                    .ok_or("PT_INTERP points past the end of the file")?;
                let path = String::from_utf8_lossy(raw).trim_end_matches('\0').to_string();
                interpreter = Some(path);
            }
            PT_DYNAMIC => has_dynamic = true,
            _ => {}
        }
    }
    Ok(ElfLinking {
        class64,
        machine,
        interpreter,
        has_dynamic,
        program_headers: phnum,
    })
}

/// The magic that starts a Go executable's build-info blob (`debug/buildinfo`).
const GO_BUILDINFO_MAGIC: &[u8] = b"\xff Go buildinf:";

/// What a Go executable says about its own build, read from its embedded build info (present
/// even when the symbol table is stripped with `-s -w`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoBuildInfo {
    /// The toolchain that built it, e.g. `go1.26.8`.
    pub go_version: String,
    /// The module information text (`path`, `mod`, `dep` lines, tab-separated).
    pub modules: String,
}

impl GoBuildInfo {
    /// The version of module `path` among the `dep` lines, if it is a dependency.
    pub fn dependency(&self, path: &str) -> Option<&str> {
        self.modules.lines().find_map(|line| {
            let mut fields = line.split('\t');
            (fields.next() == Some("dep") && fields.next() == Some(path))
                .then(|| fields.next())
                .flatten()
        })
    }
}

/// Read the build info of a Go executable (Go 1.18+ inline format); `None` when absent.
pub fn go_build_info(bytes: &[u8]) -> Option<GoBuildInfo> {
    let at = bytes
        .windows(GO_BUILDINFO_MAGIC.len())
        .position(|w| w == GO_BUILDINFO_MAGIC)?;
    // Header: 14-byte magic, pointer size, flags (bit 1: strings inline), padding to 32 bytes.
    let flags = *bytes.get(at + 15)?;
    if flags & 2 == 0 {
        return None;
    }
    let mut rest = bytes.get(at + 32..)?;
    let mut string = || -> Option<String> {
        let (len, used) = uvarint(rest)?;
        let text = rest.get(used..used + len)?;
        rest = &rest[used + len..];
        Some(String::from_utf8_lossy(text).into_owned())
    };
    let go_version = string()?;
    let modules = string().unwrap_or_default();
    Some(GoBuildInfo { go_version, modules })
}

/// A little-endian base-128 varint: (value, bytes used).
fn uvarint(bytes: &[u8]) -> Option<(usize, usize)> {
    let mut value = 0usize;
    for (i, b) in bytes.iter().take(10).enumerate() {
        value |= usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_binary_itself_parses() {
        // The Rust test binary is a real ELF (dynamically linked against libc on glibc hosts).
        let me = std::env::current_exe().unwrap();
        let linking = inspect(&me).unwrap();
        assert!(linking.program_headers > 0);
        if let Some(interp) = &linking.interpreter {
            assert!(interp.contains("ld"), "{interp}");
        }
    }

    #[test]
    fn go_build_info_is_read_from_a_synthetic_blob() {
        let mut blob = b"junk".to_vec();
        blob.extend_from_slice(GO_BUILDINFO_MAGIC);
        blob.extend_from_slice(&[8, 2]);
        blob.resize(4 + 32, 0);
        blob.push(8);
        blob.extend_from_slice(b"go1.26.8");
        let mods = "path\tx\ndep\tgofr.dev\tv1.56.6\th1:abc\n";
        blob.push(mods.len() as u8);
        blob.extend_from_slice(mods.as_bytes());
        let info = go_build_info(&blob).unwrap();
        assert_eq!(info.go_version, "go1.26.8");
        assert_eq!(info.dependency("gofr.dev"), Some("v1.56.6"));
    }

    #[test]
    fn rejects_non_elf() {
        assert!(parse(b"#!/bin/sh\necho hello, this is not an ELF file at all....\n").is_err());
    }
}
