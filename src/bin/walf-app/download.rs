//! Files the page hands to the user: downloads made from bytes, and the chart as SVG or PNG.

use js_sys::{Array, Uint8Array};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{Blob, BlobPropertyBag, HtmlAnchorElement, HtmlCanvasElement, HtmlImageElement, Url};

fn document() -> Option<web_sys::Document> {
    web_sys::window()?.document()
}

fn download_blob(name: &str, blob: &Blob) {
    let Ok(url) = Url::create_object_url_with_blob(blob) else {
        return;
    };
    if let Some(a) = document()
        .and_then(|d| d.create_element("a").ok())
        .and_then(|e| e.dyn_into::<HtmlAnchorElement>().ok())
    {
        a.set_href(&url);
        a.set_download(name);
        a.click();
    }
    // The download has started from the URL; it can go once the click is handled.
    let revoke = Closure::once_into_js(move || {
        let _ = Url::revoke_object_url(&url);
    });
    if let Some(w) = web_sys::window() {
        let _ =
            w.set_timeout_with_callback_and_timeout_and_arguments_0(revoke.unchecked_ref(), 10_000);
    }
}

fn blob(bytes: &[u8], mime: &str) -> Option<Blob> {
    let parts = Array::of1(&Uint8Array::from(bytes));
    let options = BlobPropertyBag::new();
    options.set_type(mime);
    Blob::new_with_u8_array_sequence_and_options(&parts, &options).ok()
}

pub fn download_bytes(name: &str, bytes: &[u8], mime: &str) {
    if let Some(b) = blob(bytes, mime) {
        download_blob(name, &b);
    }
}

pub fn download_text(name: &str, text: &str, mime: &str) {
    download_bytes(name, text.as_bytes(), mime);
}

/// The SVG element with id `id`, as a standalone SVG document.
pub fn svg_markup(id: &str) -> Option<String> {
    let element = document()?.get_element_by_id(id)?;
    let mut markup = element.outer_html();
    if !markup.contains("xmlns=") {
        markup = markup.replacen("<svg", "<svg xmlns=\"http://www.w3.org/2000/svg\"", 1);
    }
    Some(markup)
}

/// Draws the SVG on a canvas at twice its size and downloads it as PNG.
pub fn download_png(id: &str, name: &str) -> Result<(), String> {
    let markup = svg_markup(id).ok_or("there is no chart to save yet")?;
    let svg = blob(markup.as_bytes(), "image/svg+xml").ok_or("the chart could not be copied")?;
    let url = Url::create_object_url_with_blob(&svg).map_err(|_| "no object URL")?;
    let image = HtmlImageElement::new().map_err(|_| "no image element")?;
    let name = name.to_string();
    let img = image.clone();
    let url_for_load = url.clone();
    let on_load = Closure::once_into_js(move || {
        let width = img.natural_width().max(1) * 2;
        let height = img.natural_height().max(1) * 2;
        let Some(canvas) = document()
            .and_then(|d| d.create_element("canvas").ok())
            .and_then(|e| e.dyn_into::<HtmlCanvasElement>().ok())
        else {
            return;
        };
        canvas.set_width(width);
        canvas.set_height(height);
        if let Some(ctx) = canvas
            .get_context("2d")
            .ok()
            .flatten()
            .and_then(|c| c.dyn_into::<web_sys::CanvasRenderingContext2d>().ok())
        {
            ctx.set_fill_style_str("#ffffff");
            ctx.fill_rect(0.0, 0.0, width as f64, height as f64);
            let _ = ctx.draw_image_with_html_image_element_and_dw_and_dh(
                &img,
                0.0,
                0.0,
                width as f64,
                height as f64,
            );
        }
        let _ = Url::revoke_object_url(&url_for_load);
        let save = Closure::once_into_js(move |png: JsValue| {
            if let Ok(png) = png.dyn_into::<Blob>() {
                download_blob(&name, &png);
            }
        });
        let _ = canvas.to_blob(save.unchecked_ref());
    });
    image.set_onload(Some(on_load.unchecked_ref()));
    image.set_src(&url);
    Ok(())
}
