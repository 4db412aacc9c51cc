// The API's enumerations, in the order the dashboard lists them.
import type { Channel, Kind, Role, Stage } from "./api";

export const KINDS: readonly Kind[] = ["employer_created", "true", "unexpected"];
export const CHANNELS: readonly Channel[] = [
  "careers_site",
  "job_board",
  "social_media",
  "review_site",
  "email",
  "phone",
  "chat",
  "interview",
  "assessment",
  "event",
  "referral",
  "word_of_mouth",
  "press",
  "other",
];
export const STAGES: readonly Stage[] = [
  "awareness",
  "consideration",
  "application",
  "screening",
  "interview",
  "offer",
  "onboarding",
  "alumni",
];
export const ROLES: readonly Role[] = ["admin", "recruiter", "reporter"];
