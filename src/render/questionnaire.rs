//! Renderer: questionnaire (work in progress).
