//! FHIR R4 plumbing shared by intake and rendering: the hand-written resource model for output and
//! the XML form of FHIR.

pub mod model;
pub mod xml;
