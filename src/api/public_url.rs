//! The service's public address (`PUBLIC_URL`, or `http://` and the bound
//! address): what survey links start with, whether the dashboard's cookie
//! is `Secure`, and an origin the dashboard's pages may have.

#[derive(Debug, Clone)]
pub struct PublicUrl(pub String);

impl PublicUrl {
    pub fn survey_url(&self, token: &str) -> String {
        format!("{}/s/{token}", self.0)
    }

    /// Whether browsers reach the service over HTTPS.
    pub fn is_https(&self) -> bool {
        self.0.starts_with("https://")
    }
}
