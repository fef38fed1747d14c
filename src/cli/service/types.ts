/** What a service runs, independent of the service manager that runs it. */
export interface ServiceSpec {
  /** "run": the host side; "forwarder": the VM side */
  kind: "run" | "forwarder";
  /** system: started at boot by root's manager; user: the user's own manager, at login */
  scope: "system" | "user";
  /** the edgeport executable, absolute */
  exe: string;
  /** arguments after the executable */
  args: string[];
  description: string;
}

/** The service's short name: edgeport (host side) or edgeport-forwarder. */
export const serviceName = (kind: ServiceSpec["kind"]): string => (kind === "run" ? "edgeport" : "edgeport-forwarder");

export const DESCRIPTIONS: Record<ServiceSpec["kind"], string> = {
  run: "edgeport: publish the VM's container ports on this host",
  forwarder: "edgeport forwarder: the VM end of edgeport's pipe",
};

export const xmlEscape = (s: string): string =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
