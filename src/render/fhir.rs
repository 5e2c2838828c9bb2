//! Renderer: fhir (work in progress).
