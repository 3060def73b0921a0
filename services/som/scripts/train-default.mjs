#!/usr/bin/env node
// Rebuilds services/som/models/default/som-model.json exactly: the lab's benign training captures plus
// seeded synthetic benign traffic (see README.md, "Default model"; the recipe is src/default-model.ts).
// Run from the repository root after a build: node services/som/scripts/train-default.mjs [OUT_DIR [TRAIN_DIR]]
// TRAIN_DIR (a folder with labels.json, default lab/captures/train) replaces the lab's training folder:
// `vigil eval --leave-one-out` trains each fold on the folder minus one style.
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { progressBar } from "@vigil/lifecycle";
import { trainDefaultModel } from "../dist/index.js";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "../../..");
const out = process.argv[2] ? resolve(process.argv[2]) : join(here, "../models/default");

const model = await trainDefaultModel({
  labDir: process.argv[3] ? resolve(process.argv[3]) : join(root, "lab/captures/train"),
  progress: progressBar("train som (default)"),
  log: (line) => process.stderr.write(`${line}\n`),
});
const path = model.save(out);
process.stdout.write(`${path}: threshold ${model.threshold.toFixed(4)}, ${model.json.training.benignWindows} benign windows, data sha256 ${model.json.training.dataSha256}\n`);
