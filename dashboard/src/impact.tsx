// The touchpoint-impact report of a window, as the overview (the movers)
// and the touchpoint views (the ranking, one touchpoint's figures) show it.
import type { ComponentChildren } from "preact";
import { api, unwrap, type Schemas } from "./api";
import { Interval, Significance, useLoad } from "./ui";

export type Impact = Schemas["TouchpointImpact"];

/** The report of the window from `from` to `to`. */
export function useImpact(from: string, to: string) {
  return useLoad(() => unwrap(api.GET("/api/v1/reports/touchpoint-impact", { params: { query: { from, to } } })), [from, to]);
}

/** A row's heading: the touchpoint's name, a link to its page in the same
 * window, and `children` under it. */
export function ImpactRowHead(props: { row: Impact; children: ComponentChildren }) {
  return (
    <th scope="row">
      <a href={`/app/touchpoints/${props.row.touchpoint_id}${window.location.search}`}>{props.row.name}</a>
      <span class="cell-detail">{props.children}</span>
    </th>
  );
}

/** The mean attributed shift with its interval. */
export function MeanShift(props: { row: Impact }) {
  const { row } = props;
  return <Interval value={row.mean_attributed_shift} low={row.mean_attributed_shift_low} high={row.mean_attributed_shift_high} digits={2} />;
}

/** Whether the mean attributed shift is significant. */
export function ShiftSignificance(props: { row: Impact }) {
  return <Significance significant={props.row.significant} p={props.row.mean_attributed_shift_p_value} />;
}
