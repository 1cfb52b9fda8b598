//! The one wire format between the page, the engine's worker and its helpers (the page takes
//! this file in too): an array whose first element is the message as JSON text and whose others
//! are buffers that travel beside it, moved rather than copied. Each message type says which
//! buffer is which (a load's three model files in order, a helper's answer as f32 values).

use js_sys::{Array, Float32Array, Uint8Array};
use wasm_bindgen::JsValue;

/// A buffer to send beside a message's text.
#[derive(Clone, Copy)]
pub enum Buffer<'a> {
    Bytes(&'a [u8]),
    Floats(&'a [f32]),
}

/// The message and its buffers for `postMessage`, with the list of buffers to move.
pub fn envelope(text: &str, buffers: &[Buffer]) -> (Array, Array) {
    let message = Array::of1(&JsValue::from_str(text));
    let transfer = Array::new();
    for buffer in buffers {
        match buffer {
            Buffer::Bytes(bytes) => {
                let array = Uint8Array::from(*bytes);
                transfer.push(&array.buffer());
                message.push(&array);
            }
            Buffer::Floats(values) => {
                let array = Float32Array::from(*values);
                transfer.push(&array.buffer());
                message.push(&array);
            }
        }
    }
    (message, transfer)
}

/// The byte buffers of `files` as buffers to send.
pub fn bytes<T: AsRef<[u8]>>(files: &[T]) -> Vec<Buffer<'_>> {
    files.iter().map(|f| Buffer::Bytes(f.as_ref())).collect()
}

/// A message received: its text (None if the first element is not text) and the raw array.
pub struct Received {
    pub text: Option<String>,
    data: Array,
}

impl Received {
    pub fn new(data: &JsValue) -> Self {
        let data = Array::from(data);
        Self {
            text: data.get(0).as_string(),
            data,
        }
    }

    /// Every buffer beside the text, as bytes.
    pub fn files(&self) -> Vec<Vec<u8>> {
        (1..self.data.length())
            .map(|i| Uint8Array::new(&self.data.get(i)).to_vec())
            .collect()
    }

    /// The first buffer beside the text, as f32 values.
    pub fn floats(&self) -> Vec<f32> {
        Float32Array::new(&self.data.get(1)).to_vec()
    }
}
