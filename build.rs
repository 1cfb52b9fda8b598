//! Assembles the browser worker's matrix product (`src/bin/walf-worker/product.wat`) into two
//! WebAssembly modules: one with relaxed SIMD's fused multiply-add, one with plain SIMD128 for
//! browsers without it. The worker embeds both and keeps the first its browser accepts.

use std::path::PathBuf;

const SOURCE: &str = "src/bin/walf-worker/product.wat";

fn main() {
    println!("cargo::rerun-if-changed={SOURCE}");
    println!("cargo::rerun-if-changed=build.rs");
    // Only the browser's worker uses them.
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() != Ok("wasm32") {
        return;
    }
    let text = std::fs::read_to_string(SOURCE).expect("the matrix product's source");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    for (name, fused) in [("product-fma.wasm", true), ("product-simd128.wasm", false)] {
        let source = expand_madd(&text, fused);
        let module = wat::parse_str(&source)
            .unwrap_or_else(|e| panic!("{SOURCE} ({name}) does not assemble: {e}"));
        std::fs::write(out.join(name), module).expect("OUT_DIR is writable");
    }
}

/// Rewrites every `(MADD a b c)` (a·b + c; each operand a `$local` or an expression) as a fused
/// `f32x4.relaxed_madd` or as `f32x4.mul` then `f32x4.add`.
fn expand_madd(text: &str, fused: bool) -> String {
    const OPEN: &str = "(MADD ";
    let mut out = String::with_capacity(text.len() * 2);
    let mut rest = text;
    while let Some(at) = rest.find(OPEN) {
        out.push_str(&rest[..at]);
        rest = &rest[at + OPEN.len()..];
        let mut operands = Vec::new();
        for _ in 0..3 {
            let (operand, after) = operand(rest);
            operands.push(operand);
            rest = after;
        }
        rest = rest
            .trim_start()
            .strip_prefix(')')
            .expect("MADD takes three operands");
        let [a, b, c] = [&operands[0], &operands[1], &operands[2]];
        if fused {
            out.push_str(&format!("(f32x4.relaxed_madd {a} {b} {c})"));
        } else {
            out.push_str(&format!("(f32x4.add {c} (f32x4.mul {a} {b}))"));
        }
    }
    out.push_str(rest);
    out
}

/// The next operand of `text` as an expression (`$x` becomes `(local.get $x)`), and what follows.
fn operand(text: &str) -> (String, &str) {
    let text = text.trim_start();
    if text.starts_with('(') {
        let mut depth = 0;
        for (i, ch) in text.char_indices() {
            match ch {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        return (text[..=i].to_string(), &text[i + 1..]);
                    }
                }
                _ => {}
            }
        }
        panic!("an unbalanced MADD operand");
    }
    let end = text
        .find(|c: char| c.is_whitespace() || c == ')')
        .unwrap_or(text.len());
    (format!("(local.get {})", &text[..end]), &text[end..])
}
