"""Generative recommenders over sequences: SASRec and HSTU over item ids, TIGER over semantic IDs.

    config.py        frozen configs (GenerativeConfig holds them all, like training.config.TrainConfig)
    data.py          leave-one-out splits as padded / jagged batches (from shards or flat events)
    datasets.py      the benchmark files read directly (Beauty's TIGER split, ml-100k)
    semantic_ids.py  ID tables with the collision check and disambiguation level, the trie
    beam.py          beam search constrained to valid IDs
    full_softmax.py  cross-entropy over the whole catalogue in chunks, its gradient in the same pass
    tasks.py         model + loss, and serving (scores / recommend)
    evaluate.py      full-ranking leave-one-out metrics (HR, NDCG, MRR at K in {5, 10, 50})
    train.py         train_generative(cfg) on the trainer's pieces
"""
