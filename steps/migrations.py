"""Numbered schema migrations, shared by SQLite and PostgreSQL.

Append new migrations; never edit an applied one. `{pk}` becomes each dialect's
auto-increment primary key. Times are ISO-8601 UTC text, JSON columns are text: both dialects
store them verbatim.
"""

MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (
        1,
        "datasets, images, runs, models",
        [
            """CREATE TABLE annotation_images (
                id {pk},
                annotation_version TEXT NOT NULL,
                file_name TEXT NOT NULL,
                width INTEGER NOT NULL,
                height INTEGER NOT NULL,
                sha256 TEXT NOT NULL,
                num_shapes INTEGER NOT NULL,
                labels TEXT NOT NULL,
                recorded_at TEXT NOT NULL,
                UNIQUE (annotation_version, file_name)
            )""",
            """CREATE TABLE training_datasets (
                id {pk},
                version TEXT NOT NULL UNIQUE,
                annotation_version TEXT NOT NULL,
                git_commit TEXT NOT NULL,
                dvc_md5 TEXT NOT NULL,
                num_train INTEGER NOT NULL,
                num_val INTEGER NOT NULL,
                num_test INTEGER NOT NULL,
                categories TEXT NOT NULL,
                settings TEXT NOT NULL,
                created_at TEXT NOT NULL
            )""",
            """CREATE TABLE dataset_images (
                dataset_id INTEGER NOT NULL REFERENCES training_datasets (id),
                image_id INTEGER NOT NULL REFERENCES annotation_images (id),
                split TEXT NOT NULL CHECK (split IN ('train', 'val', 'test')),
                PRIMARY KEY (dataset_id, image_id)
            )""",
            """CREATE TABLE pipeline_runs (
                id {pk},
                run_id TEXT NOT NULL UNIQUE,
                dataset_version TEXT,
                status TEXT NOT NULL,
                started_at TEXT NOT NULL,
                finished_at TEXT
            )""",
            """CREATE TABLE models (
                id {pk},
                model_id TEXT NOT NULL UNIQUE,
                run_id TEXT,
                dataset_version TEXT,
                uri TEXT NOT NULL,
                metrics TEXT NOT NULL,
                created_at TEXT NOT NULL
            )""",
            """CREATE TABLE evaluations (
                id {pk},
                run_id TEXT,
                checkpoint TEXT NOT NULL,
                iteration INTEGER NOT NULL,
                metrics TEXT NOT NULL,
                selected INTEGER NOT NULL,
                created_at TEXT NOT NULL
            )""",
            """CREATE TABLE promotions (
                id {pk},
                model_id TEXT NOT NULL,
                promoted INTEGER NOT NULL,
                metric TEXT NOT NULL,
                challenger_score DOUBLE PRECISION,
                champion_score DOUBLE PRECISION,
                champion_model_id TEXT,
                reason TEXT NOT NULL,
                decided_at TEXT NOT NULL
            )""",
        ],
    ),
    (
        2,
        "pipeline run outcomes (written by the exit handler, steps/notify)",
        [
            "ALTER TABLE pipeline_runs ADD COLUMN model_id TEXT",
            "ALTER TABLE pipeline_runs ADD COLUMN promoted INTEGER",
            "ALTER TABLE pipeline_runs ADD COLUMN duration_seconds DOUBLE PRECISION",
            "ALTER TABLE pipeline_runs ADD COLUMN failures TEXT",
        ],
    ),
    (
        3,
        "labelme files left out of a recorded dataset (dataset.on_invalid=skip), with the reason",
        [
            """CREATE TABLE skipped_annotations (
                dataset_id INTEGER NOT NULL REFERENCES training_datasets (id),
                file TEXT NOT NULL,
                reason TEXT NOT NULL,
                PRIMARY KEY (dataset_id, file)
            )""",
            "ALTER TABLE training_datasets ADD COLUMN num_skipped INTEGER NOT NULL DEFAULT 0",
        ],
    ),
    (
        4,
        "promotion statistics: gain, paired-bootstrap confidence and what it was measured on",
        [
            "ALTER TABLE promotions ADD COLUMN gain DOUBLE PRECISION",
            "ALTER TABLE promotions ADD COLUMN confidence DOUBLE PRECISION",
            "ALTER TABLE promotions ADD COLUMN required_confidence DOUBLE PRECISION",
            "ALTER TABLE promotions ADD COLUMN min_gain DOUBLE PRECISION",
            "ALTER TABLE promotions ADD COLUMN bootstrap_samples INTEGER",
            "ALTER TABLE promotions ADD COLUMN val_images INTEGER",
            "ALTER TABLE promotions ADD COLUMN candidates INTEGER",
        ],
    ),
    (
        5,
        "the database's identity: record names it in each dataset tag, so that no other database moves the tag",
        [
            "CREATE TABLE database_identity (id TEXT PRIMARY KEY)",
            "INSERT INTO database_identity (id) VALUES ('{random_id}')",
        ],
    ),
    (
        6,
        "promotion evidence: the gain's bootstrap interval, objects scored, and the test's place in the champion's reign",
        [
            "ALTER TABLE promotions ADD COLUMN gain_low DOUBLE PRECISION",
            "ALTER TABLE promotions ADD COLUMN gain_high DOUBLE PRECISION",
            "ALTER TABLE promotions ADD COLUMN interval_level DOUBLE PRECISION",
            "ALTER TABLE promotions ADD COLUMN val_objects INTEGER",
            "ALTER TABLE promotions ADD COLUMN reign_comparison INTEGER",
        ],
    ),
    (
        7,
        "a champion's reign counted where two overlapping selects cannot take the same test: one row a reign",
        [
            """CREATE TABLE reigns (
                champion_model_id TEXT NOT NULL,
                comparison_set TEXT NOT NULL,
                tests INTEGER NOT NULL,
                PRIMARY KEY (champion_model_id, comparison_set)
            )""",
            # The tests each reign already ran, as migration 6 counted them.
            """INSERT INTO reigns (champion_model_id, comparison_set, tests)
                SELECT champion_model_id, '', COUNT(*) FROM promotions
                WHERE champion_model_id IS NOT NULL AND reign_comparison IS NOT NULL GROUP BY champion_model_id""",
        ],
    ),
    (
        8,
        "every figure of a promotion decision stored under its column (steps/decision_figures.py)",
        [
            "ALTER TABLE promotions ADD COLUMN min_confidence DOUBLE PRECISION",
            "ALTER TABLE promotions ADD COLUMN comparison_set TEXT",
        ],
    ),
]
