//! The CPU backend's matrix product in the browser: `product.wat`, assembled by build.rs into a
//! module with relaxed SIMD's fused multiply-add and one with plain SIMD128. Each runs in a
//! small instance of its own over this worker's memory (its `a`, `b`, `c` are addresses in it),
//! so that the engine's large module stays valid in browsers without relaxed SIMD. At start-up
//! each is checked against the plain product on a small problem, and the first that agrees
//! serves this worker's linear layers (`walf_lab::model::product`); with none, burn's runs.

use std::cell::RefCell;

use js_sys::{Object, Reflect, Uint8Array, WebAssembly};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;

use walf_lab::model::product::{
    Layout, PANEL, ProductKernel, pack, reference_kernel, set_product_kernel,
};

const FUSED: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/product-fma.wasm"));
const PLAIN: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/product-simd128.wasm"));

/// The kernels, best first: a name for people, the module.
const KERNELS: [(&str, &[u8]); 2] = [
    ("fused multiply-add (relaxed SIMD)", FUSED),
    ("SIMD128", PLAIN),
];

#[wasm_bindgen]
extern "C" {
    /// The module's `product` export.
    type Export;
    #[wasm_bindgen(method, js_name = call)]
    #[allow(clippy::too_many_arguments)]
    fn run(
        this: &Export,
        this_arg: &JsValue,
        m: u32,
        k: u32,
        panels: u32,
        a: u32,
        lda: u32,
        b: u32,
        c: u32,
        ldc: u32,
    );
}

thread_local! {
    static CHOSEN: RefCell<Option<(&'static str, Export)>> = const { RefCell::new(None) };
}

/// The name of the kernel serving this worker's linear layers (`None`: burn's product).
pub fn chosen() -> Option<&'static str> {
    CHOSEN.with(|c| c.borrow().as_ref().map(|(name, _)| *name))
}

/// What each kernel came to at start-up, for the benchmark and the tests to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// The browser does not accept the module.
    Unsupported,
    /// It ran and agreed with the plain product.
    Agrees,
    /// It ran and did not agree: not used.
    Disagrees,
}

/// Checks the kernels and makes the first that agrees serve this worker's linear layers
/// ([`chosen`] names it). Returns each kernel's name and check.
pub fn install() -> Vec<(&'static str, Check)> {
    let mut checks = Vec::new();
    for (name, module) in KERNELS {
        let check = match instantiate(module) {
            None => Check::Unsupported,
            Some(export) if agrees(&export) => {
                if chosen().is_none() {
                    CHOSEN.with(|c| *c.borrow_mut() = Some((name, export)));
                    set_product_kernel(Some(chosen_kernel as ProductKernel));
                }
                Check::Agrees
            }
            Some(_) => Check::Disagrees,
        };
        checks.push((name, check));
    }
    checks
}

fn instantiate(module: &[u8]) -> Option<Export> {
    let bytes = Uint8Array::from(module);
    if !WebAssembly::validate(&bytes).ok()? {
        return None;
    }
    let module = WebAssembly::Module::new(&bytes).ok()?;
    let env = Object::new();
    Reflect::set(&env, &"memory".into(), &wasm_bindgen::memory()).ok()?;
    let imports = Object::new();
    Reflect::set(&imports, &"env".into(), &env).ok()?;
    let instance = WebAssembly::Instance::new(&module, &imports).ok()?;
    Reflect::get(&instance.exports(), &"product".into())
        .ok()?
        .dyn_into::<js_sys::Function>()
        .ok()
        .map(JsCast::unchecked_into)
}

fn call(export: &Export, m: usize, k: usize, a: &[f32], packed: &[f32], c: &mut [f32]) {
    let panels = packed.len() / (PANEL * k);
    assert!(a.len() >= m * k && c.len() >= m * panels * PANEL);
    // Addresses in this worker's memory, which the kernel's instance shares.
    export.run(
        &JsValue::UNDEFINED,
        m as u32,
        k as u32,
        panels as u32,
        a.as_ptr() as u32,
        k as u32,
        packed.as_ptr() as u32,
        c.as_mut_ptr() as u32,
        (panels * PANEL) as u32,
    );
}

fn chosen_kernel(m: usize, k: usize, a: &[f32], packed: &[f32], c: &mut [f32]) {
    CHOSEN.with(|chosen| {
        let chosen = chosen.borrow();
        let (_, export) = chosen
            .as_ref()
            .expect("a kernel is set only once one is chosen");
        call(export, m, k, a, packed, c);
    });
}

/// A product with every remainder (rows beyond fours, columns beyond a panel) against the
/// plain one. Fused multiply-add rounds once where the plain product rounds twice, so they
/// agree to float precision, not bit for bit.
fn agrees(export: &Export) -> bool {
    let (m, k, n) = (7, 19, 21);
    // Values of both signs and several magnitudes, the same every time.
    let value = |i: usize| ((i * 37 % 101) as f32 - 50.0) / 17.0;
    let a: Vec<f32> = (0..m * k).map(value).collect();
    let b: Vec<f32> = (0..k * n).map(|i| value(i + 7)).collect();
    let packed = pack(&b, k, n, Layout::Rows);
    let width = n.div_ceil(PANEL) * PANEL;
    let mut got = vec![f32::NAN; m * width];
    let mut want = vec![0f32; m * width];
    call(export, m, k, &a, &packed, &mut got);
    reference_kernel(m, k, &a, &packed, &mut want);
    got.iter()
        .zip(&want)
        .all(|(g, w)| (g - w).abs() <= 1e-5 * (1.0 + w.abs()))
}
