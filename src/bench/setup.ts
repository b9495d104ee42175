/**
 * One thing the load is sent to: the sink itself, a relay, or a pair of relays sharing
 * a queue. `ports` are where the load goes (split evenly when there are several);
 * `pgids` are the process groups that belong to it (relays, their workers, their Redis),
 * so the CPU of the other setups, idle meanwhile, is not charged to it.
 */
export interface Setup {
  name: string;
  ports: number[];
  pgids: number[];
  stop(): Promise<void>;
}
