/**
 * Small helpers over the foundation SDK's panel builders, so the three dashboards read as a list
 * of panels: a title, a description, a unit and the queries. Layout: every panel has a width and
 * height; DashboardBuilder places them left to right under the row before them.
 */
import type * as cog from '@grafana/grafana-foundation-sdk/cog';
import * as common from '@grafana/grafana-foundation-sdk/common';
import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import * as prometheus from '@grafana/grafana-foundation-sdk/prometheus';
import * as stat from '@grafana/grafana-foundation-sdk/stat';
import * as table from '@grafana/grafana-foundation-sdk/table';
import * as timeseries from '@grafana/grafana-foundation-sdk/timeseries';
import * as barchart from '@grafana/grafana-foundation-sdk/barchart';
import { ClickHouseQueryBuilder } from './clickhouse';
import { CLICKHOUSE, PROMETHEUS } from './datasources';

export interface Size {
  w: number;
  h: number;
}

export const HALF: Size = { w: 12, h: 8 };
export const THIRD: Size = { w: 8, h: 8 };
export const FULL: Size = { w: 24, h: 9 };
export const STAT: Size = { w: 6, h: 4 };

/** A PromQL target; `legend` is Grafana's legendFormat ({{label}}). */
export function promql(expr: string, legend: string, refId = 'A'): prometheus.DataqueryBuilder {
  return new prometheus.DataqueryBuilder()
    .expr(expr.replace(/\s+/g, ' ').trim())
    .legendFormat(legend)
    .refId(refId)
    .range()
    .datasource(PROMETHEUS);
}

type Target = prometheus.DataqueryBuilder | ClickHouseQueryBuilder;

function datasourceOf(targets: Target[]): dashboard.DataSourceRef {
  const kinds = new Set(targets.map((t) => (t instanceof ClickHouseQueryBuilder ? 'ch' : 'prom')));
  if (kinds.size !== 1) throw new Error('a panel queries one datasource');
  return kinds.has('ch') ? CLICKHOUSE : PROMETHEUS;
}

function letters(targets: Target[]): Target[] {
  targets.forEach((t, i) => t.refId(String.fromCharCode(65 + i)));
  return targets;
}

export function timeSeriesPanel(
  title: string,
  description: string,
  unit: string,
  targets: Target[],
  size: Size = HALF,
  options: { stack?: boolean; bars?: boolean } = {},
): timeseries.PanelBuilder {
  const p = new timeseries.PanelBuilder()
    .title(title)
    .description(description)
    .datasource(datasourceOf(targets))
    .targets(letters(targets) as cog.Builder<cog.Dataquery>[])
    .unit(unit)
    .span(size.w)
    .height(size.h)
    .fillOpacity(options.bars ? 80 : 10)
    .legend(
      new common.VizLegendOptionsBuilder()
        .showLegend(true)
        .displayMode(common.LegendDisplayMode.List)
        .placement(common.LegendPlacement.Bottom),
    );
  if (options.bars) p.drawStyle(common.GraphDrawStyle.Bars);
  if (options.stack) p.stacking(new common.StackingConfigBuilder().mode(common.StackingMode.Normal));
  return p;
}

export function statPanel(
  title: string,
  description: string,
  unit: string,
  targets: Target[],
  size: Size = STAT,
  thresholds?: Array<{ value: number | null; color: string }>,
): stat.PanelBuilder {
  const p = new stat.PanelBuilder()
    .title(title)
    .description(description)
    .datasource(datasourceOf(targets))
    .targets(letters(targets) as cog.Builder<cog.Dataquery>[])
    .unit(unit)
    .span(size.w)
    .height(size.h)
    .graphMode(common.BigValueGraphMode.Area)
    .colorMode(common.BigValueColorMode.Value)
    .reduceOptions(new common.ReduceDataOptionsBuilder().calcs(['lastNotNull']).values(false));
  if (thresholds)
    p.thresholds(
      new dashboard.ThresholdsConfigBuilder().mode(dashboard.ThresholdsMode.Absolute).steps(thresholds),
    );
  return p;
}

export function tablePanel(
  title: string,
  description: string,
  targets: Target[],
  size: Size = HALF,
): table.PanelBuilder {
  return new table.PanelBuilder()
    .title(title)
    .description(description)
    .datasource(datasourceOf(targets))
    .targets(letters(targets) as cog.Builder<cog.Dataquery>[])
    .span(size.w)
    .height(size.h);
}

export function barChartPanel(
  title: string,
  description: string,
  unit: string,
  targets: Target[],
  size: Size = HALF,
): barchart.PanelBuilder {
  return new barchart.PanelBuilder()
    .title(title)
    .description(description)
    .datasource(datasourceOf(targets))
    .targets(letters(targets) as cog.Builder<cog.Dataquery>[])
    .unit(unit)
    .span(size.w)
    .height(size.h)
    .stacking(common.StackingMode.Normal)
    .legend(
      new common.VizLegendOptionsBuilder()
        .showLegend(true)
        .displayMode(common.LegendDisplayMode.List)
        .placement(common.LegendPlacement.Bottom),
    );
}

export function row(title: string): dashboard.RowBuilder {
  return new dashboard.RowBuilder(title);
}

/**
 * The `service` variable: the `service` label of Holdback's processes (each `holdback run` and
 * `holdback clickhouse sink` announces itself under it; stack/components.ts), several at once.
 */
export function serviceVariable(): dashboard.QueryVariableBuilder {
  return new dashboard.QueryVariableBuilder('service')
    .label('service')
    .description(
      'The service label of the processes: --application-id of holdback run, --group-id of the sink',
    )
    .datasource(PROMETHEUS)
    .query('label_values(up{job="holdback"}, service)')
    .refresh(dashboard.VariableRefresh.OnTimeRangeChanged)
    .sort(dashboard.VariableSort.AlphabeticalAsc)
    .multi(true)
    .includeAll(true)
    .allValue('.*')
    .current({ selected: true, text: ['All'], value: ['$__all'] });
}

/** The `database` variable: the ClickHouse database of the analytics tables (--database). */
export function databaseVariable(): dashboard.TextBoxVariableBuilder {
  return new dashboard.TextBoxVariableBuilder('database')
    .label('ClickHouse database')
    .description('The database `holdback clickhouse migrate/sink --database` uses')
    .defaultValue('holdback')
    .current({ selected: true, text: 'holdback', value: 'holdback' });
}

/** Builds, then numbers the panels 1..n in order (stable ids, so links to a panel keep working). */
export function finish(builder: dashboard.DashboardBuilder): dashboard.Dashboard {
  const d = builder.build();
  (d.panels ?? []).forEach((p, i) => (p.id = i + 1));
  return d;
}
