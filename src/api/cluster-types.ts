/**
 * Wire shapes (Consul's field names) of user events, prepared queries, network coordinates and
 * the operator's view of the servers.
 */
import type { ServiceEntry } from './types.js';

/** One user event (GET /v1/event/list, PUT /v1/event/fire/:name). */
export interface UserEvent {
  ID: string;
  Name: string;
  /** base64 of the payload, null when there is none. */
  Payload: string | null;
  NodeFilter: string;
  ServiceFilter: string;
  TagFilter: string;
  Version: number;
  LTime: number;
}

export interface PreparedQueryFailover {
  NearestN: number;
  Datacenters: string[] | null;
}

export interface PreparedQueryService {
  Service: string;
  Failover: PreparedQueryFailover;
  IgnoreCheckIDs: string[] | null;
  OnlyPassing: boolean;
  Near: string;
  Tags: string[] | null;
  NodeMeta: Record<string, string> | null;
  ServiceMeta: Record<string, string> | null;
  Connect: boolean;
}

export interface PreparedQueryTemplate {
  /** "" for a static query, "name_prefix_match" for a template. */
  Type: string;
  Regexp: string;
  RemoveEmptyTags: boolean;
}

/** A prepared query as the API shows it. */
export interface PreparedQuery {
  ID: string;
  Name: string;
  Session: string;
  /** "" or "<hidden>": the captured token itself is never shown (it is stored as its hash). */
  Token: string;
  Template: PreparedQueryTemplate;
  Service: PreparedQueryService;
  DNS: { TTL: string };
  CreateIndex: number;
  ModifyIndex: number;
}

/** GET /v1/query/:id/execute. */
export interface PreparedQueryExecuteResponse {
  Service: string;
  Nodes: ServiceEntry[];
  DNS: { TTL: string };
  Datacenter: string;
  Failovers: number;
}

/** GET /v1/query/:id/explain. */
export interface PreparedQueryExplainResponse {
  Query: PreparedQuery;
}

/** A Vivaldi network coordinate (Consul's shape; Trellis stores what agents send). */
export interface Coordinate {
  Vec: number[];
  Error: number;
  Adjustment: number;
  Height: number;
}

export interface CoordinateEntry {
  Node: string;
  Segment: string;
  Coord: Coordinate;
}

export interface DatacenterCoordinates {
  Datacenter: string;
  AreaID: string;
  Coordinates: CoordinateEntry[];
}

/** The coordinate a Consul agent starts with: the origin, maximal error, minimal height. */
export function originCoordinate(): Coordinate {
  return { Vec: [0, 0, 0, 0, 0, 0, 0, 0], Error: 1.5, Adjustment: 0, Height: 1e-5 };
}

/** Estimated round trip (seconds) between two coordinates, as Consul's DistanceTo computes it. */
export function coordinateDistance(a: Coordinate, b: Coordinate): number {
  let sum = 0;
  const n = Math.max(a.Vec.length, b.Vec.length);
  for (let i = 0; i < n; i++) {
    const d = (a.Vec[i] ?? 0) - (b.Vec[i] ?? 0);
    sum += d * d;
  }
  const raw = Math.sqrt(sum) + a.Height + b.Height;
  const adjusted = raw + a.Adjustment + b.Adjustment;
  return adjusted > 0 ? adjusted : raw;
}

/** One server in GET /v1/operator/raft/configuration. */
export interface RaftServer {
  ID: string;
  Node: string;
  Address: string;
  Leader: boolean;
  Voter: boolean;
  ProtocolVersion: string;
}

export interface RaftConfiguration {
  Servers: RaftServer[];
  Index: number;
}

/** One server in GET /v1/operator/autopilot/health. */
export interface AutopilotServerHealth {
  ID: string;
  Name: string;
  Address: string;
  SerfStatus: string;
  Version: string;
  Leader: boolean;
  LastContact: string;
  LastTerm: number;
  LastIndex: number;
  Healthy: boolean;
  Voter: boolean;
  StableSince: string;
}

export interface AutopilotHealth {
  Healthy: boolean;
  FailureTolerance: number;
  Servers: AutopilotServerHealth[];
}
