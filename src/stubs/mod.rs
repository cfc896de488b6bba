//! The stub services r53 answers Alias records for: a load balancer (`r53 lb`) and a database
//! endpoint controller (`r53 rds`). They talk to `r53 serve` only through its API
//! (`/v1/endpoints`), as any other registrant would.

pub mod lb;
pub mod rds;
