#!/usr/bin/env node
import { runDaemon } from "@vigil/lifecycle";
import { consoleDaemon } from "./run.js";

void runDaemon(consoleDaemon());
