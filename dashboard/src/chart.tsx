// A uPlot line chart of cNPS per bucket, one line per series with its 95%
// interval as a band. The canvas is hidden from assistive technology: the
// caption summarises it and the table beside it (TrendTable) has every
// figure. uPlot draws on a canvas and sets element.style through the CSSOM
// only (the CSP allows that); its stylesheet is bundled into app.css.
import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import type { Format } from "./format";

export interface ChartSeries {
  label: string;
  color: string;
  values: (number | null)[];
  /** The 95% interval, drawn as a band (none without). */
  low?: (number | null)[];
  high?: (number | null)[];
}

/** Colours of the series: 3:1 or more against white (WCAG 1.4.11). */
export const PALETTE = ["#1f5fbf", "#b34700", "#6f3aa0", "#0b7a52", "#a3195b", "#4d5b66"];

function alpha(hex: string, opacity: number): string {
  const n = parseInt(hex.slice(1), 16);
  return `rgba(${(n >> 16) & 255},${(n >> 8) & 255},${n & 255},${opacity})`;
}

export function TrendChart(props: {
  /** Bucket starts, in seconds since the epoch (UTC midnight). */
  x: number[];
  series: ChartSeries[];
  fmt: Format;
  monthly: boolean;
  /** The y scale's range (cNPS: -100..100). */
  range: [number, number];
  /** Signed axis labels (cNPS); false for scores (whole numbers). */
  signed?: boolean;
  /** x holds moments, not bucket starts. */
  moments?: boolean;
  height?: number;
}) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const element = box.current;
    if (!element) return;
    const { fmt } = props;
    const data: uPlot.AlignedData = [props.x];
    const series: uPlot.Series[] = [{}];
    const bands: uPlot.Band[] = [];
    for (const s of props.series) {
      const base = data.length;
      data.push(s.values);
      series.push({ label: s.label, stroke: s.color, width: 2, points: { show: true, size: 6, fill: s.color }, spanGaps: false });
      if (s.low && s.high) {
        data.push(s.high, s.low);
        series.push(
          { stroke: "transparent", width: 0, points: { show: false } },
          { stroke: "transparent", width: 0, points: { show: false } },
        );
        bands.push({ series: [base + 1, base + 2], fill: alpha(s.color, 0.14) });
      }
    }
    const axis = { stroke: "#333", grid: { stroke: "#e3e6ea", width: 1 }, ticks: { stroke: "#c8cdd2", width: 1 } };
    const chart = new uPlot(
      {
        width: Math.max(element.clientWidth, 280),
        height: props.height ?? 260,
        legend: { show: false },
        cursor: { drag: { x: false, y: false } },
        // Points that share an instant (two encounters at once) are fine.
        scales: { x: { time: true }, y: { range: props.range } },
        axes: [
          // Room for "13 thg 10" between ticks, so labels never overlap.
          // Ticks on bucket starts (weeks from Monday, months from the 1st),
          // every k-th one so labels never overlap ("13 thg 10" is wide).
          // (Moments, like a journey's, get uPlot's own time ticks.)
          {
            ...axis,
            space: 80,
            ...(props.moments
              ? {}
              : {
                  splits: (u: uPlot) => {
                    const every = Math.max(1, Math.ceil((props.x.length * 80) / Math.max(u.width - 60, 100)));
                    return props.x.filter((_, i) => i % every === 0);
                  },
                }),
            values: (_u, splits) => splits.map((s) => fmt.axisDay(s, props.monthly)),
          },
          props.signed === false
            ? { ...axis, size: 40, incrs: [1, 2, 5, 10], values: (_u, splits) => splits.map((s) => fmt.number(s, 0)) }
            : { ...axis, size: 48, values: (_u, splits) => splits.map((s) => fmt.signed(s, 0)) },
        ],
        series,
        bands,
      },
      data,
      element,
    );
    const resize = new ResizeObserver(() => chart.setSize({ width: Math.max(element.clientWidth, 280), height: props.height ?? 260 }));
    resize.observe(element);
    return () => {
      resize.disconnect();
      chart.destroy();
    };
  }, [props.x, props.series, props.fmt, props.monthly]);
  return <div class="chart" ref={box} aria-hidden="true" style={{ minHeight: `${props.height ?? 260}px` }} />;
}

/** The series' names and colours, as text (the chart's own legend is off). */
export function Legend(props: { series: { label: string; color: string }[] }) {
  return (
    <ul class="legend">
      {props.series.map((s) => (
        <li>
          <span class="swatch" style={{ backgroundColor: s.color }} aria-hidden="true" />
          {s.label}
        </li>
      ))}
    </ul>
  );
}
