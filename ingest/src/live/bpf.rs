//! Classic BPF filters (`--bpf`), compiled from pcap filter syntax by `tcpdump -ddd`.
//!
//! cemflow does not link libpcap: at startup it writes an empty capture with the
//! interface's link type and asks tcpdump to compile the expression against it
//! (`tcpdump -ddd -r FILE EXPR` prints the instruction count, then `code jt jf k` per line).

use super::LiveError;
use std::io::Write;
use std::process::Command;

/// One classic BPF instruction (`struct sock_filter`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BpfInstruction {
    /// Opcode.
    pub code: u16,
    /// Jump offset if true.
    pub jt: u8,
    /// Jump offset if false.
    pub jf: u8,
    /// Constant operand.
    pub k: u32,
}

/// A compiled filter and the expression it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BpfProgram {
    /// The pcap filter expression.
    pub expression: String,
    /// Its instructions.
    pub instructions: Vec<BpfInstruction>,
}

impl BpfProgram {
    /// Compiles `expression` for frames of pcap LINKTYPE `linktype` with tcpdump.
    pub fn compile(expression: &str, linktype: u32) -> Result<BpfProgram, LiveError> {
        let err = |reason: String| LiveError::Filter {
            filter: expression.to_string(),
            reason,
        };
        let path = std::env::temp_dir().join(format!(
            "cemflow-bpf-{}-{}.pcap",
            std::process::id(),
            linktype
        ));
        let mut header = Vec::with_capacity(24);
        header.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        header.extend_from_slice(&2u16.to_le_bytes());
        header.extend_from_slice(&4u16.to_le_bytes());
        header.extend_from_slice(&0i32.to_le_bytes());
        header.extend_from_slice(&0u32.to_le_bytes());
        header.extend_from_slice(&262_144u32.to_le_bytes());
        header.extend_from_slice(&linktype.to_le_bytes());
        std::fs::File::create(&path)
            .and_then(|mut f| f.write_all(&header))
            .map_err(|e| err(format!("writing {}: {e}", path.display())))?;
        let out = Command::new("tcpdump")
            .arg("-ddd")
            .arg("-r")
            .arg(&path)
            .arg(expression)
            .output();
        let _ = std::fs::remove_file(&path);
        let out = out.map_err(|e| {
            err(if e.kind() == std::io::ErrorKind::NotFound {
                "compiling a BPF filter needs tcpdump on the PATH (apt-get install tcpdump)"
                    .to_string()
            } else {
                format!("running tcpdump: {e}")
            })
        })?;
        if !out.status.success() {
            let msg = String::from_utf8_lossy(&out.stderr);
            let msg = msg
                .lines()
                .filter(|l| !l.starts_with("reading from file"))
                .collect::<Vec<_>>()
                .join("; ");
            return Err(err(msg.trim().to_string()));
        }
        BpfProgram::parse_ddd(expression, &String::from_utf8_lossy(&out.stdout))
    }

    /// Parses tcpdump's `-ddd` output: the instruction count, then one `code jt jf k`
    /// line per instruction (decimal).
    pub fn parse_ddd(expression: &str, text: &str) -> Result<BpfProgram, LiveError> {
        let err = |reason: String| LiveError::Filter {
            filter: expression.to_string(),
            reason,
        };
        let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
        let count: usize = lines
            .next()
            .and_then(|l| l.parse().ok())
            .ok_or_else(|| err("tcpdump printed no instruction count".into()))?;
        let mut instructions = Vec::with_capacity(count);
        for (n, line) in lines.enumerate() {
            let f: Vec<&str> = line.split_whitespace().collect();
            let parsed = match f.as_slice() {
                [code, jt, jf, k] => (|| {
                    Some(BpfInstruction {
                        code: code.parse().ok()?,
                        jt: jt.parse().ok()?,
                        jf: jf.parse().ok()?,
                        k: k.parse().ok()?,
                    })
                })(),
                _ => None,
            };
            instructions.push(
                parsed.ok_or_else(|| err(format!("instruction {}: bad line {line:?}", n + 1)))?,
            );
        }
        if instructions.len() != count || count == 0 || count > 4096 {
            return Err(err(format!(
                "expected {count} instructions, got {}",
                instructions.len()
            )));
        }
        Ok(BpfProgram {
            expression: expression.to_string(),
            instructions,
        })
    }
}
