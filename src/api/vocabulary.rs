//! The API's enums: the closed vocabularies of DOMAIN.md, each mirroring an
//! entity enum one to one.

use entity::enums;

/// Declares an API enum with its wire names and the conversions to and from
/// the entity enum of the same variants.
macro_rules! api_enum {
    (
        $(#[$meta:meta])*
        $name:ident mirrors $entity:ty {
            $($variant:ident = $wire:literal),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(poem_openapi::Enum, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name {
            $(
                #[oai(rename = $wire)]
                #[serde(rename = $wire)]
                $variant,
            )+
        }

        impl From<$name> for $entity {
            fn from(value: $name) -> Self {
                match value {
                    $($name::$variant => <$entity>::$variant,)+
                }
            }
        }

        impl From<$entity> for $name {
            fn from(value: $entity) -> Self {
                match value {
                    $(<$entity>::$variant => $name::$variant,)+
                }
            }
        }
    };
}

api_enum! {
    /// Who controls the touchpoint. `employer_created`: made and controlled by
    /// the employer (careers site, job ads, interviews); `true`: arises around
    /// the employer, who can neither control nor change it (review sites, word
    /// of mouth, press); `unexpected`: outside anyone's plan (a chance meeting
    /// with an employee, a no-show interviewer, a viral post).
    Kind mirrors enums::Kind {
        EmployerCreated = "employer_created",
        True = "true",
        Unexpected = "unexpected",
    }
}

api_enum! {
    /// Where the touchpoint happens.
    Channel mirrors enums::Channel {
        CareersSite = "careers_site",
        JobBoard = "job_board",
        SocialMedia = "social_media",
        ReviewSite = "review_site",
        Email = "email",
        Phone = "phone",
        Chat = "chat",
        Interview = "interview",
        Assessment = "assessment",
        Event = "event",
        Referral = "referral",
        WordOfMouth = "word_of_mouth",
        Press = "press",
        Other = "other",
    }
}

api_enum! {
    /// The step of the candidate journey: `awareness` and `consideration`
    /// come before applying; `application`, `screening`, `interview` and
    /// `offer` during the process; `onboarding` and `alumni` (hired, rejected
    /// or withdrawn, and still talking about the employer) after it.
    Stage mirrors enums::Stage {
        Awareness = "awareness",
        Consideration = "consideration",
        Application = "application",
        Screening = "screening",
        Interview = "interview",
        Offer = "offer",
        Onboarding = "onboarding",
        Alumni = "alumni",
    }
}

api_enum! {
    /// Who recorded the encounter and measured its score.
    Source mirrors enums::Source {
        RecruiterObservation = "recruiter_observation",
        CandidateSurvey = "candidate_survey",
        ReviewImport = "review_import",
        Other = "other",
    }
}

api_enum! {
    /// What an API key may do. `admin`: everything; `recruiter`: read
    /// everything, create and update candidates and encounters; `reporter`:
    /// read only.
    Role mirrors enums::Role {
        Admin = "admin",
        Recruiter = "recruiter",
        Reporter = "reporter",
    }
}

api_enum! {
    /// What an audit event is about: a `touchpoint`, a `candidate`, an
    /// `encounter`, an `api_key`, the `organization` itself, a
    /// `survey_invitation`, a `webhook_endpoint`, an `alert_rule`, an
    /// `alert`, or a `dashboard_session` (a sign-in to the dashboard,
    /// `create`, and its sign-out, `delete`).
    AuditResource mirrors enums::AuditResource {
        Touchpoint = "touchpoint",
        Candidate = "candidate",
        Encounter = "encounter",
        ApiKey = "api_key",
        Organization = "organization",
        SurveyInvitation = "survey_invitation",
        WebhookEndpoint = "webhook_endpoint",
        AlertRule = "alert_rule",
        Alert = "alert",
        DashboardSession = "dashboard_session",
    }
}

api_enum! {
    /// The change an audit event records. `archive` (touchpoints), `erase`
    /// (a candidate's personal data, and the notes of their encounters) and
    /// `revoke` (API keys, survey invitations) are the DELETEs that keep
    /// the row.
    AuditAction mirrors enums::AuditAction {
        Create = "create",
        Update = "update",
        Delete = "delete",
        Archive = "archive",
        Erase = "erase",
        Revoke = "revoke",
    }
}

api_enum! {
    /// The language of a survey's page and e-mail: Vietnamese or English.
    SurveyLocale mirrors enums::SurveyLocale {
        Vi = "vi",
        En = "en",
    }
}

api_enum! {
    /// `confidential`: the answer is the candidate's encounter (source
    /// `candidate_survey`), in their journey, shift and export.
    /// `anonymous`: the answer is stored with its touchpoint, day, score
    /// and comment only, with no link to the candidate or the invitation;
    /// it counts in cNPS, trends and touchpoint figures, never in a
    /// journey, a shift or an attribution.
    SurveyMode mirrors enums::SurveyMode {
        Confidential = "confidential",
        Anonymous = "anonymous",
    }
}
