//! r53's integration tests: one binary, servers started in-process on ephemeral ports and
//! queried over real sockets.

mod abuse;
mod alias;
mod api;
mod cli;
mod crash;
mod dns;
mod fuzz;
mod isolation;
mod knot_diff;
mod lb;
mod openapi;
mod private;
mod rds;
mod recursion;
mod resolver;
mod serve;
mod snapshot;
mod support;
mod values;
