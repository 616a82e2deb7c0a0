//! The shared libraries an ELF file asks the loader for (`DT_NEEDED`), read from its dynamic
//! segment: what `ldd` would resolve, without running anything. The full image is checked
//! with it so that trimming a package never leaves a library missing.

use anyhow::{Result, bail};

const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const DT_NULL: u64 = 0;
const DT_NEEDED: u64 = 1;
const DT_STRTAB: u64 = 5;

/// Whether the bytes start like an ELF file.
pub fn is_elf(bytes: &[u8]) -> bool {
    bytes.starts_with(b"\x7fELF")
}

/// The `DT_NEEDED` names of a 64-bit little-endian ELF file, in order; empty for a static
/// file (no dynamic segment).
pub fn needed(elf: &[u8]) -> Result<Vec<String>> {
    let u16_at = |o: usize| elf.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let u32_at = |o: usize| {
        elf.get(o..o + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let u64_at = |o: u64| {
        let o = usize::try_from(o).ok()?;
        elf.get(o..o.checked_add(8)?).map(|b| {
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            u64::from_le_bytes(a)
        })
    };
    if elf.get(..6) != Some(b"\x7fELF\x02\x01".as_slice()) {
        bail!("not a 64-bit little-endian ELF file");
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38))
    else {
        bail!("truncated ELF header");
    };
    // (vaddr, offset, filesz) of each loadable segment, to map the string table's address.
    let mut loads = Vec::new();
    let mut dynamic = None;
    for i in 0..u64::from(phnum) {
        let at = phoff + i * u64::from(phentsize);
        let header = usize::try_from(at)?;
        let (Some(kind), Some(offset), Some(vaddr), Some(filesz)) = (
            u32_at(header),
            u64_at(at + 8),
            u64_at(at + 16),
            u64_at(at + 32),
        ) else {
            bail!("program header {i} lies outside the file");
        };
        match kind {
            PT_LOAD => loads.push((vaddr, offset, filesz)),
            PT_DYNAMIC => dynamic = Some((offset, filesz)),
            _ => {}
        }
    }
    let Some((dyn_offset, dyn_size)) = dynamic else {
        return Ok(Vec::new());
    };
    let mut names = Vec::new();
    let mut strtab = None;
    for i in 0..dyn_size / 16 {
        let at = dyn_offset + i * 16;
        let (Some(tag), Some(value)) = (u64_at(at), u64_at(at + 8)) else {
            bail!("dynamic entry {i} lies outside the file");
        };
        match tag {
            DT_NULL => break,
            DT_NEEDED => names.push(value),
            DT_STRTAB => strtab = Some(value),
            _ => {}
        }
    }
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let Some(strtab) = strtab else {
        bail!("DT_NEEDED entries but no string table");
    };
    let Some(table) = loads
        .iter()
        .find(|(vaddr, _, size)| strtab >= *vaddr && strtab < vaddr + size)
        .map(|(vaddr, offset, _)| strtab - vaddr + offset)
    else {
        bail!("the string table's address {strtab:#x} is in no loadable segment");
    };
    names
        .into_iter()
        .map(|n| {
            let start = usize::try_from(table + n)?;
            let bytes = elf.get(start..).unwrap_or_default();
            let Some(end) = bytes.iter().position(|b| *b == 0) else {
                bail!("a DT_NEEDED name runs past the end of the file");
            };
            Ok(String::from_utf8_lossy(&bytes[..end]).into_owned())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A dynamically linked executable names libc, as `ldd` would show: this test's own
    /// executable (a Nix build sandbox has no /bin/true to read).
    #[test]
    fn a_dynamic_executable_needs_libc() {
        let bytes = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        assert!(is_elf(&bytes));
        let names = needed(&bytes).unwrap();
        assert!(names.contains(&"libc.so.6".to_owned()), "{names:?}");
    }

    #[test]
    fn non_elf_input_is_an_error() {
        assert!(!is_elf(b"#!/bin/sh\n"));
        assert!(needed(b"#!/bin/sh\n").is_err());
        // An ELF header with no program headers has no dynamic segment.
        let mut header = vec![0u8; 64];
        header[..6].copy_from_slice(b"\x7fELF\x02\x01");
        assert_eq!(needed(&header).unwrap(), Vec::<String>::new());
    }
}
