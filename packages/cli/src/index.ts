// The command contract lives in @vigil/lifecycle (the services implement it and cannot import this package).
export { EXIT, type Command, type CommandModule } from "@vigil/lifecycle";
