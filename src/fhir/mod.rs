//! FHIR R4 plumbing shared by intake and rendering: the XML form of FHIR.

pub mod xml;
