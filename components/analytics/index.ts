// The streaming window's components.
export * from "./plug";
export * from "./stream-analytics";
