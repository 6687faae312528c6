/**
 * A query of the ClickHouse datasource plugin (grafana-clickhouse-datasource v4, SQL editor). The
 * foundation SDK has no builder for this plugin, so this is its query model, typed, as the plugin
 * saves it: editorType "sql", queryType "table" or "timeSeries", format 1 (table) or 0 (time
 * series), rawSql.
 *
 * The SQL runs on ClickHouse 18.16 (the local stack) and 25.8 (docker-compose): no Map, no
 * DateTime64, no `{name:Type}` parameters. Macros are limited to `$__timeFilter(column)` and
 * `$__dateFilter(column)` (expanded by the plugin to `column >= toDateTime(<unix s>) AND column <=
 * toDateTime(<unix s>)` and `column >= toDate('<yyyy-mm-dd>') AND column <= toDate(...)`), and the
 * dashboard variable `${database}`; test/integration/dashboards.test.ts expands them the same way
 * and runs every query on the real server.
 */
import type * as cog from '@grafana/grafana-foundation-sdk/cog';
import type * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import { CLICKHOUSE } from './datasources';

export type ClickHouseQueryType = 'table' | 'timeSeries';

export interface ClickHouseQuery extends cog.Dataquery {
  refId: string;
  datasource: dashboard.DataSourceRef;
  editorType: 'sql';
  queryType: ClickHouseQueryType;
  /** The plugin's Format enum: 0 time series, 1 table. */
  format: 0 | 1;
  rawSql: string;
}

export class ClickHouseQueryBuilder implements cog.Builder<cog.Dataquery> {
  private readonly query: ClickHouseQuery;

  constructor(rawSql: string) {
    this.query = {
      refId: 'A',
      datasource: CLICKHOUSE,
      editorType: 'sql',
      queryType: 'table',
      format: 1,
      rawSql: rawSql.trim(),
      // The SDK's marker of a query variant (a function: JSON.stringify leaves it out).
      _implementsDataqueryVariant: () => undefined,
    };
  }

  refId(refId: string): this {
    this.query.refId = refId;
    return this;
  }

  /** Rows of (time, series..., value) become one series per value column (wide or long frames). */
  timeSeries(): this {
    this.query.queryType = 'timeSeries';
    this.query.format = 0;
    return this;
  }

  build(): ClickHouseQuery {
    return { ...this.query };
  }
}

/** Shorthand: `sql\`SELECT ...\`` is a table query. */
export function sql(text: string): ClickHouseQueryBuilder {
  return new ClickHouseQueryBuilder(text);
}
