//! r53's integration tests: one binary, servers started in-process on ephemeral ports and
//! queried over real sockets.

mod api;
mod support;
