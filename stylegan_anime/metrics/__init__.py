"""Metrics: FID in a pluggable feature space (Inception file, or our attribute classifier)."""
from .classifier import AttributeClassifier, ClassifierConfig, load_classifier, save_classifier
from .evaluate import data_labels, dataset_stats, generator_batches, generator_fid, snapshot_fid, stats_of
from .features import FeatureExtractor, InceptionFeatures, load_features
from .fid import FeatureStats, fid_from_stats, frechet_distance, sqrtm_psd
from .train_classifier import ClassifierTraining, accuracy, train_classifier

__all__ = ["AttributeClassifier", "ClassifierConfig", "load_classifier", "save_classifier", "dataset_stats",
           "generator_fid", "stats_of", "data_labels", "snapshot_fid",
           "generator_batches", "FeatureExtractor", "InceptionFeatures", "load_features", "FeatureStats",
           "fid_from_stats", "frechet_distance", "sqrtm_psd", "ClassifierTraining", "accuracy", "train_classifier"]
