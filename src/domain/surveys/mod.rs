//! Candidate pulse surveys: invitations (a link per candidate and
//! touchpoint), the answers the public survey page records, the e-mail
//! sender, and the response-rate report.

pub mod answers;
pub mod invitations;
pub mod mail;
pub mod responses;
pub mod wording;
