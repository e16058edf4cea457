// The streaming window's components.
export * from "./hook";
export * from "./plug";
export * from "./stream-analytics";
