/**
 * The datasources the dashboards use: the uids and types of
 * dashboards/grafana/provisioning/datasources/datasources.yml (test/unit/dashboards.test.ts checks
 * that every panel names one of them).
 */
import type * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';

export const PROMETHEUS: dashboard.DataSourceRef = { type: 'prometheus', uid: 'holdback-prometheus' };
export const CLICKHOUSE: dashboard.DataSourceRef = {
  type: 'grafana-clickhouse-datasource',
  uid: 'holdback-clickhouse',
};
