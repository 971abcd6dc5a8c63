//! The black-box suite: one test binary, the real dispatcher and worker
//! started on `127.0.0.1:0` over temp data directories.

mod dispatcher;
mod worker;
