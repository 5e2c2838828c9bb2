//! Routing: the regional handover table (work in progress).
