/**
 * Co-partitioned assignment, as Kafka Streams does it: partition p of every input topic goes to
 * the same member, so one task sees all of a merchant's events. kafkajs's built-in round-robin
 * assigner spreads topic-partitions independently, which would split a merchant across members.
 */
import { AssignerProtocol, type Assigner, type PartitionAssigner } from 'kafkajs';

export const CO_PARTITIONED = 'HoldbackCoPartitioned';

/** Partition numbers 0..count-1 spread over the sorted member ids, round-robin. */
export function assignPartitions(
  memberIds: readonly string[],
  partitionCount: number,
): Map<string, number[]> {
  const members = [...memberIds].sort();
  const out = new Map<string, number[]>(members.map((m) => [m, []]));
  for (let p = 0; p < partitionCount; p++) out.get(members[p % members.length]!)!.push(p);
  return out;
}

/**
 * librdkafka's range assignor for one topic, which the rdkafka transport uses (equal partition
 * counts make it co-partitioned): members sorted by member id, each given a contiguous range of
 * floor(count / members) partitions, the first count % members one more
 * (rd_kafka_range_assignor_assign_cb). The standby placement predicts assignments with it.
 */
export function rangePartitions(memberIds: readonly string[], partitionCount: number): Map<string, number[]> {
  const members = [...memberIds].sort();
  const out = new Map<string, number[]>(members.map((m) => [m, []]));
  const per = Math.floor(partitionCount / members.length);
  const extra = partitionCount % members.length;
  members.forEach((m, i) => {
    const start = per * i + Math.min(i, extra);
    const length = per + (i < extra ? 1 : 0);
    for (let p = start; p < start + length; p++) out.get(m)!.push(p);
  });
  return out;
}

export const coPartitionedAssigner: PartitionAssigner = ({ cluster }) => {
  const assigner: Assigner = {
    name: CO_PARTITIONED,
    version: 1,
    async assign({ members, topics }) {
      const counts = topics.map((t) => cluster.findTopicPartitionMetadata(t).length);
      const count = counts[0] ?? 0;
      if (counts.some((c) => c !== count)) {
        throw new Error(
          `input topics are not co-partitioned: ${topics.map((t, i) => `${t}=${counts[i]}`).join(', ')}`,
        );
      }
      const byMember = assignPartitions(
        members.map((m) => m.memberId),
        count,
      );
      return members.map(({ memberId }) => {
        const partitions = byMember.get(memberId) ?? [];
        const assignment: Record<string, number[]> = {};
        for (const t of topics) assignment[t] = [...partitions];
        return {
          memberId,
          memberAssignment: AssignerProtocol.MemberAssignment.encode({
            version: 1,
            assignment,
            userData: Buffer.alloc(0),
          }),
        };
      });
    },
    protocol({ topics }) {
      return {
        name: CO_PARTITIONED,
        metadata: AssignerProtocol.MemberMetadata.encode({ version: 1, topics, userData: Buffer.alloc(0) }),
      };
    },
  };
  return assigner;
};
