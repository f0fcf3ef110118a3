"""Widget helpers shared by the MedAI modules: the parameter node binding, the model list, error display."""

import logging

import qt
import vtk

import slicer
from slicer.i18n import tr as _

from MedAISegLib.dependencies import ensureDependencies


class ParameterNodeGui:
    """Binds a MedAI module's parameter node to its .ui widgets.

    The widgets with a ``SlicerParameterName`` property are bound by ``connectGui``. The model combobox
    (``ui.modelComboBox``, the selected card described in ``ui.modelInfoLabel``) is filled from the engine's
    catalog for ``task``, so it is kept in step with the node's ``model`` here; when the catalog cannot be read,
    ``ui.statusLabel`` says why. ``onChange`` is called after every change of the node.
    """

    def __init__(self, ui, task: str, onChange) -> None:
        self.ui = ui
        self.task = task
        self.onChange = onChange
        self.node = None
        self._guiTag = None
        self._observerTag = None
        self.ui.modelComboBox.connect("currentIndexChanged(int)", self.onModelSelected)
        self.fillModels()

    def fillModels(self) -> None:
        """(Re)fill the model combobox from the catalog, e.g. once the engine's packages are installed."""
        combo = self.ui.modelComboBox
        wasBlocked = combo.blockSignals(True)
        combo.clear()
        try:
            cards = modelCards(self.task)
        except Exception as error:  # no catalog in this engine, its packages not installed yet, a broken card
            cards = []
            self.ui.statusLabel.text = _("The model catalog cannot be read: {error}").format(error=error)
        for card in cards:
            combo.addItem(card.name, card.id)
            combo.setItemData(combo.count - 1, card.description, qt.Qt.ToolTipRole)
        combo.blockSignals(wasBlocked)
        self.update()

    def ensureDependencies(self) -> None:
        """Install what the node's model needs (asking first); then fill the model list if it could not be read."""
        self.ui.statusLabel.text = _("Checking the Python packages the model needs...")
        ensureDependencies(self.node.model)
        if not self.ui.modelComboBox.count:
            self.fillModels()

    def setNode(self, node) -> None:
        """Follow ``node`` (a parameter node wrapper), or nothing when it is None."""
        if self.node:
            self.node.disconnectGui(self._guiTag)
            self.node.RemoveObserver(self._observerTag)
        self.node = node
        if node:
            if not node.inputVolume:
                node.inputVolume = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")
            self._guiTag = node.connectGui(self.ui)
            self._observerTag = node.AddObserver(vtk.vtkCommand.ModifiedEvent, self.update)
            self.update()

    def update(self, caller=None, event=None) -> None:
        """Show the node's model in the combobox and its card in the label."""
        if not self.node:
            return
        combo = self.ui.modelComboBox
        index = combo.findData(self.node.model)
        if index < 0 and combo.count:  # a model this catalog does not have: take the first one it has
            self.node.model = combo.itemData(0)
            return  # the node's Modified event calls update() again
        if index >= 0 and index != combo.currentIndex:
            combo.currentIndex = index
        self.ui.modelInfoLabel.text = describeModel(self.node.model)
        self.showChannels()
        self.onChange()

    #: The panel's selectors for a case's other volumes (a model with more channels runs from the console or CLI).
    CHANNEL_SLOTS = (2, 3, 4)

    def showChannels(self) -> None:
        """One selector per extra volume the selected model takes, labelled with the channel's name."""
        if self.task != "segmentation":
            return
        names = channelNames(self.node.model)
        for slot in self.CHANNEL_SLOTS:
            label, selector = getattr(self.ui, f"channel{slot}Label"), getattr(self.ui, f"channel{slot}Selector")
            used = slot <= len(names)
            label.visible = selector.visible = used
            if used:
                label.text = f"{names[slot - 1]}:"
        self.ui.inputLabel.text = f"{names[0]}:" if len(names) > 1 else _("Input volume:")
        if len(names) > 1 + len(self.CHANNEL_SLOTS):
            self.ui.statusLabel.text = _("This model takes {count} volumes per case; the panel has room for "
                                         "{room}: run it from the Python console or the command line.").format(
                count=len(names), room=1 + len(self.CHANNEL_SLOTS))

    def channelVolumes(self) -> list:
        """The volume nodes chosen for the selected model's extra channels, in order (None where none is chosen)."""
        count = len(channelNames(self.node.model)) - 1 if self.node and self.task == "segmentation" else 0
        return [getattr(self.node, f"channel{slot}Volume") for slot in self.CHANNEL_SLOTS[:count]]

    def onModelSelected(self, index: int) -> None:
        modelId = self.ui.modelComboBox.itemData(index)
        if self.node and modelId:
            self.node.model = modelId


def modelCards(task: str) -> list:
    """The catalog's model cards for ``task`` ("segmentation" or "classification")."""
    from medai.models.catalog import list_cards

    return [card for card in list_cards() if card.task == task]


def channelNames(modelId: str) -> list:
    """The volumes ``modelId`` takes per case (``["image"]`` when the catalog cannot say)."""
    try:
        from medai.slicer.seg_logic import MedAISegLogic

        return MedAISegLogic.channel_names(modelId)
    except Exception:  # no catalog or no such card: the combobox's status already says why
        return ["image"]


def describeModel(modelId: str) -> str:
    """What the model does, the images it expects, its outputs and licence; "" when the catalog lacks it."""
    try:
        from medai.models.catalog import get_card

        return get_card(modelId).summary()
    except Exception:  # no catalog or no such card: the combobox's status already says why
        return ""


def chooseModelFile(parent) -> str:
    """Ask for a model to add: a MONAI bundle's .zip or configs/metadata.json, or a model package's card.json.

    (A file, because one dialog cannot pick either a folder or a zip; the engine takes the file's folder.)
    """
    return qt.QFileDialog.getOpenFileName(
        parent, _("Add a model: a MONAI bundle (.zip, or configs/metadata.json) or a model package (card.json)"),
        "", _("MedAI models (*.zip card.json metadata.json)"))


def showError(statusLabel, error: Exception) -> None:
    """Log ``error`` with its traceback; show its one-line message in a dialog and in ``statusLabel``."""
    logging.error("MedAI: %s", error, exc_info=error)
    message = " ".join(str(error).split()) or type(error).__name__
    statusLabel.text = _("Failed: {message}").format(message=message)
    slicer.util.errorDisplay(message)
