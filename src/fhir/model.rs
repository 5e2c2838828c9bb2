//! Hand-written FHIR R4 resources and datatypes: just those the gateway emits.
