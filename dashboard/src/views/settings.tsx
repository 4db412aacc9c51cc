// Settings (/app/settings, admins): the organization's name, the smallest
// group a report shows, and the survey settings.
import { useState } from "preact/hooks";
import { api, unwrap, type Schemas } from "../api";
import { useApp } from "../state";
import { errorsFor, Field, FormError, Page, Section, Select, Show, useLoad, type FieldErrors } from "../ui";

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
  const [errors, setErrors] = useState<FieldErrors>({});
  const [formError, setFormError] = useState<string>();
  const [saved, setSaved] = useState(false);
  const [saving, setSaving] = useState(false);
  const submit = async (event: Event) => {
    event.preventDefault();
    if (saving) return;
    setSaving(true);
    setSaved(false);
    setErrors({});
    setFormError(undefined);
    const local: FieldErrors = {};
    if (!/^\d+$/.test(minGroup)) local.minGroup = t("settings.whole_number");
    if (!/^\d+$/.test(cooldown)) local.cooldown = t("settings.whole_number");
    if (Object.keys(local).length > 0) {
      setErrors(local);
      setSaving(false);
      return;
    }
    try {
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
    } catch (error) {
      const split = errorsFor(t, error, {
        name: "name",
        min_group_size: "minGroup",
        survey_cooldown_days: "cooldown",
        survey_locale: "locale",
        privacy_notice_url: "privacy",
      });
      setErrors(split.fields);
      setFormError(split.form);
    } finally {
      setSaving(false);
    }
  };
  return (
    <form class="form-grid" onSubmit={submit} noValidate>
      {saved && (
        <p class="notice success wide" role="status">
          {t("settings.saved")}
        </p>
      )}
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
      <div class="form-actions">
        <button type="submit" disabled={saving}>
          {t("common.save")}
        </button>
      </div>
    </form>
  );
}
