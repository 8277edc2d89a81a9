/**
 * What one transparent sidecar asks the host's nftables to do, as its ProxyRunner last knew
 * it: which user's outbound connections to capture, where each mesh destination's listener
 * is, and which inbound port is the app's. The RedirectManager merges every sidecar's into one
 * ruleset.
 */

/** The capture settings of a sidecar in transparent mode (its `transparent_proxy` block). */
export interface TransparentSettings {
  /** The unix user (name or uid) whose outbound connections are captured; none: inbound only. */
  captureUser?: string;
  /** Or the cgroup v2 path (below /sys/fs/cgroup) whose processes are captured. */
  captureCgroup?: string;
  excludeInboundPorts: number[];
  excludeOutboundPorts: number[];
  excludeOutboundCidrs: string[];
  excludeUids: number[];
  redirectDns: boolean;
}

export interface CaptureDestination {
  /** The mesh service. */
  destination: string;
  /** The sidecar's local outbound listener for it (127.0.0.1). */
  toPort: number;
  /** The service's virtual IP: every port of it is captured. */
  vip?: string;
  /** The real addresses of its instances (address and app port): dialing them is captured too. */
  addresses: { address: string; port: number }[];
}

export interface SidecarCapture {
  sidecarId: string;
  /** The service the sidecar fronts. */
  service: string;
  settings: TransparentSettings;
  /** Connections from the network to the app's port go to the public listener. */
  inbound?: { port: number; toPort: number };
  outbound: CaptureDestination[];
}
