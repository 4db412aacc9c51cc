// Settings (/app/settings, admins): the organization's name, the smallest
// group a report shows, and the survey settings.
import { useState } from "preact/hooks";
import { api, unwrap, type Schemas } from "../api";
import { useApp } from "../state";
import { Field, FormActions, FormError, Page, Section, Select, Show, StatusNote, useForm, useLoad, type FieldErrors } from "../ui";

type Organization = Schemas["Organization"];

export function Settings() {
  const { t } = useApp();
  const loaded = useLoad(() => unwrap(api.GET("/api/v1/organization")), []);
  return (
    <Page title={t("nav.settings")}>
      <Section title={t("settings.organization")} id="organization" busy={loaded.loading}>
        <Show loaded={loaded}>{(org) => <SettingsForm org={org} key={org.updated_at} onSaved={loaded.reload} />}</Show>
      </Section>
    </Page>
  );
}

function SettingsForm(props: { org: Organization; onSaved: () => void }) {
  const { t, fmt, updateOrganization } = useApp();
  const { org } = props;
  const [name, setName] = useState(org.name);
  const [minGroup, setMinGroup] = useState(String(org.min_group_size));
  const [cooldown, setCooldown] = useState(String(org.survey_cooldown_days));
  const [locale, setLocale] = useState<Schemas["SurveyLocale"]>(org.survey_locale);
  const [privacy, setPrivacy] = useState(org.privacy_notice_url ?? "");
  const [saved, setSaved] = useState(false);
  const { errors, formError, setFormError, saving, submit } = useForm({
    name: "name",
    min_group_size: "minGroup",
    survey_cooldown_days: "cooldown",
    survey_locale: "locale",
    privacy_notice_url: "privacy",
  });
  const check = () => {
    const local: FieldErrors = {};
    if (!/^\d+$/.test(minGroup)) local.minGroup = t("settings.whole_number");
    if (!/^\d+$/.test(cooldown)) local.cooldown = t("settings.whole_number");
    return local;
  };
  const save = async () => {
    const updated = await unwrap(
      api.PATCH("/api/v1/organization", {
        body: {
          name: name.trim(),
          min_group_size: Number(minGroup),
          survey_cooldown_days: Number(cooldown),
          survey_locale: locale,
          privacy_notice_url: privacy.trim() || null,
        },
      }),
    );
    updateOrganization({ name: updated.name, min_group_size: updated.min_group_size });
    setSaved(true);
  };
  const onSubmit = (event: Event) => {
    // A new attempt hides the last one's outcome, even when the fields are
    // refused here.
    setSaved(false);
    setFormError(undefined);
    return submit(event, save, check);
  };
  return (
    <form class="form-grid" onSubmit={onSubmit} noValidate>
      <StatusNote message={saved ? t("settings.saved") : undefined} class="notice success wide" />
      <FormError message={formError} />
      <Field id="org-name" label={t("settings.name")} error={errors.name}>
        {(control) => <input {...control} type="text" maxLength={200} value={name} onInput={(e) => setName(e.currentTarget.value)} />}
      </Field>
      <Field id="org-slug" label={t("settings.slug")} hint={t("settings.slug_hint")}>
        {(control) => <input {...control} type="text" readOnly value={org.slug} />}
      </Field>
      <Field id="org-min-group" label={t("settings.min_group")} hint={t("settings.min_group_hint")} error={errors.minGroup}>
        {(control) => (
          <input {...control} type="number" inputMode="numeric" min={0} max={1000} value={minGroup} onInput={(e) => setMinGroup(e.currentTarget.value)} />
        )}
      </Field>
      <Field id="org-cooldown" label={t("settings.cooldown")} hint={t("settings.cooldown_hint")} error={errors.cooldown}>
        {(control) => (
          <input {...control} type="number" inputMode="numeric" min={0} max={3650} value={cooldown} onInput={(e) => setCooldown(e.currentTarget.value)} />
        )}
      </Field>
      <Select
        id="org-locale"
        label={t("settings.survey_locale")}
        value={locale}
        options={["vi", "en"] as const}
        labelOf={(l) => t(`language.${l}`)}
        onChange={setLocale}
        error={errors.locale}
      />
      <Field id="org-privacy" label={t("settings.privacy")} hint={t("settings.privacy_hint")} error={errors.privacy}>
        {(control) => <input {...control} type="url" maxLength={2000} value={privacy} onInput={(e) => setPrivacy(e.currentTarget.value)} />}
      </Field>
      <p class="muted small wide">{t("settings.updated", { date: fmt.dateTime(org.updated_at) })}</p>
      <FormActions saving={saving} label={t("common.save")} />
    </form>
  );
}
