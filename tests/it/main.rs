//! r53's integration tests: one binary, servers started in-process on ephemeral ports and
//! queried over real sockets.

mod alias;
mod api;
mod cli;
mod dns;
mod knot_diff;
mod lb;
mod openapi;
mod private;
mod rds;
mod recursion;
mod resolver;
mod serve;
mod support;
