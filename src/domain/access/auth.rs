//! Who is calling and what their role lets them do.

use entity::enums::Role;

use crate::domain::DomainError;

/// The authenticated caller: one API key of one organization.
#[derive(Debug, Clone)]
pub struct Principal {
    pub key_id: i64,
    pub key_name: String,
    pub organization_id: i64,
    pub role: Role,
}

/// The actions the role matrix distinguishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    /// Read the catalog, candidates, encounters and journeys.
    Read,
    /// Create and update candidates and encounters.
    RecordEncounters,
    /// Create, update and archive touchpoints.
    ManageCatalog,
    /// Create, list and revoke API keys.
    ManageKeys,
    /// Answer candidates' privacy requests: export or erase their data.
    ManagePersonalData,
    /// Read and change the organization's name and settings
    /// (`min_group_size`).
    ManageOrganization,
    /// Read the audit trail: who changed what, and when.
    ReadAuditTrail,
    /// Manage webhook endpoints and alert rules, and read deliveries.
    ManageMonitoring,
    /// Acknowledge and resolve alerts.
    FollowUpAlerts,
}

impl Principal {
    pub fn can(&self, capability: Capability) -> bool {
        match self.role {
            Role::Admin => true,
            Role::Recruiter => {
                matches!(
                    capability,
                    Capability::Read | Capability::RecordEncounters | Capability::FollowUpAlerts
                )
            }
            Role::Reporter => capability == Capability::Read,
        }
    }

    pub fn require(&self, capability: Capability) -> Result<(), DomainError> {
        if self.can(capability) {
            Ok(())
        } else {
            Err(DomainError::Forbidden(format!(
                "the {} role may not {}",
                role_name(self.role),
                match capability {
                    Capability::Read => "read",
                    Capability::RecordEncounters => "create or change candidates and encounters",
                    Capability::ManageCatalog => "change the touchpoint catalog",
                    Capability::ManageKeys => "manage API keys",
                    Capability::ManagePersonalData => "export or erase a candidate's data",
                    Capability::ManageOrganization => {
                        "read or change the organization's settings"
                    }
                    Capability::ReadAuditTrail => "read the audit trail",
                    Capability::ManageMonitoring => "manage webhooks or alert rules",
                    Capability::FollowUpAlerts => "acknowledge or resolve alerts",
                }
            )))
        }
    }
}

pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::Admin => "admin",
        Role::Recruiter => "recruiter",
        Role::Reporter => "reporter",
    }
}
