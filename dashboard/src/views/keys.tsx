// API keys (/app/keys, admins): the organization's keys, a new one (its
// token shown once), revoking one.
import { useState } from "preact/hooks";
import { allPages, api, unwrap, type Role } from "../api";
import { useApp } from "../state";
import { ROLES } from "../vocabulary";
import { Field, FormActions, FormError, Page, required, RowButton, Section, Select, Show, Table, ToggleButton, useActions, useForm, useLoad } from "../ui";
import { OnceSecret } from "./alerts";

export function Keys() {
  const { t, fmt, session } = useApp();
  const [creating, setCreating] = useState(false);
  const [token, setToken] = useState<{ name: string; token: string } | null>(null);
  const { error, run } = useActions();
  const loaded = useLoad(
    () => allPages((cursor) => unwrap(api.GET("/api/v1/keys", { params: { query: { limit: 500, ...(cursor ? { cursor } : {}) } } }))),
    [],
  );
  const revoke = async (id: number, name: string) => {
    const own = id === session.key.id;
    if (!confirm(own ? t("keys.revoke_own_confirm", { name }) : t("keys.revoke_confirm", { name }))) return;
    await run(async () => {
      await unwrap(api.DELETE("/api/v1/keys/{id}", { params: { path: { id } } }));
      loaded.reload();
    });
  };
  return (
    <Page
      title={t("nav.keys")}
      intro={t("keys.intro")}
      actions={
        <ToggleButton open={creating} onToggle={setCreating}>
          {t("keys.new")}
        </ToggleButton>
      }
    >
      {creating && (
        <Section title={t("keys.new")} id="new-key">
          <KeyForm
            onDone={(created) => {
              setCreating(false);
              if (created) {
                setToken(created);
                loaded.reload();
              }
            }}
          />
        </Section>
      )}
      {token && <OnceSecret label={t("keys.token", { name: token.name })} value={token.token} onClose={() => setToken(null)} />}
      <FormError message={error} />
      <Section title={t("keys.list")} id="key-list" busy={loaded.loading}>
        <Show loaded={loaded}>
          {(keys) => (
            <Table
              columns={[t("keys.name"), t("keys.role"), t("keys.prefix"), t("keys.created"), t("keys.last_used"), t("keys.state"), t("common.actions")]}
            >
              {keys.map((key) => (
                <tr class={key.revoked_at ? "archived" : undefined}>
                  <th scope="row">
                    {key.name}
                    {key.id === session.key.id && <span class="cell-detail">{t("keys.yours")}</span>}
                  </th>
                  <td>{t(`role.${key.role}`)}</td>
                  <td>
                    <code>{key.token_prefix}…</code>
                  </td>
                  <td>{fmt.dateTime(key.created_at)}</td>
                  <td>{key.last_used_at ? fmt.dateTime(key.last_used_at) : <span class="muted">{t("keys.never")}</span>}</td>
                  <td>
                    {key.revoked_at
                      ? t("keys.revoked_on", { date: fmt.dateTime(key.revoked_at) })
                      : key.expires_at
                        ? Date.parse(key.expires_at) < Date.now()
                          ? t("keys.expired_on", { date: fmt.dateTime(key.expires_at) })
                          : t("keys.expires_on", { date: fmt.dateTime(key.expires_at) })
                        : t("keys.active")}
                  </td>
                  <td class="actions">
                    {!key.revoked_at && (
                      <RowButton label={t("keys.revoke")} row={key.name} danger onClick={() => revoke(key.id, key.name)} />
                    )}
                  </td>
                </tr>
              ))}
            </Table>
          )}
        </Show>
      </Section>
    </Page>
  );
}

function KeyForm(props: { onDone: (created: { name: string; token: string } | null) => void }) {
  const { t } = useApp();
  const [name, setName] = useState("");
  const [role, setRole] = useState<Role>("reporter");
  const [expires, setExpires] = useState("");
  const { errors, formError, saving, submit } = useForm({ name: "name", role: "role", expires_at: "expires" });
  const create = async () => {
    const created = await unwrap(
      api.POST("/api/v1/keys", {
        // The end of the chosen day, in UTC.
        body: { name: name.trim(), role, ...(expires ? { expires_at: `${expires}T23:59:59Z` } : {}) },
      }),
    );
    props.onDone({ name: created.key.name, token: created.token });
  };
  return (
    <form class="form-grid" onSubmit={(event) => submit(event, create, () => required(t, { name }))} noValidate>
      <FormError message={formError} />
      <Field id="key-name" label={t("keys.name")} hint={t("keys.name_hint")} error={errors.name}>
        {(control) => <input {...control} type="text" maxLength={200} value={name} onInput={(e) => setName(e.currentTarget.value)} />}
      </Field>
      <Select id="key-role" label={t("keys.role")} value={role} options={ROLES} labelOf={(r) => t(`role.${r}`)} onChange={setRole} error={errors.role} />
      <Field id="key-expires" label={t("keys.expires")} hint={t("keys.expires_hint")} error={errors.expires}>
        {(control) => <input {...control} type="date" value={expires} onInput={(e) => setExpires(e.currentTarget.value)} />}
      </Field>
      <FormActions saving={saving} label={t("keys.create")} onCancel={() => props.onDone(null)} />
    </form>
  );
}
