//! EDIFACT interchange syntax (work in progress).
