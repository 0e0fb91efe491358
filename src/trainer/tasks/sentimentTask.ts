/** The demo task: the sentiment oracle of data/sentimentOracle.ts scores a review's prompt + completion. */
import { sentimentScore } from '../data/sentimentOracle';
import type { Task } from './task';

export const sentimentTask: Task = { name: 'sentiment', score: sentimentScore };
