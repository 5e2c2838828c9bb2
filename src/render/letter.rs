//! Renderer: letter (work in progress).
