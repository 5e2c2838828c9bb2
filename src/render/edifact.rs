//! Renderer: edifact (work in progress).
